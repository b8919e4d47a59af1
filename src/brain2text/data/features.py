"""The features of a bin, as ``prepare`` computes them and as decoding a raw file recomputes them.

- Selection (2023 ``.mat`` files): ``--features`` (any of tx1..tx4, spikePow) times ``--arrays``
  (area 6v: columns 0-127, area 44: 128-255), feature-major: by default tx1 then spikePow of
  area 6v, the standard 256 (FACTS §2). B2T'25 files are taken whole (512 columns).
- Normalisation: ``block`` z-scores each trial with the mean and SD (ddof 0) per feature over
  every bin of every trial of its block in the file, ``(x - mean) / (std + 1e-8)``, computed in
  float64 and returned as float32; ``none`` keeps the features as recorded.
- Day statistics: mean and SD over every bin of a training day (``norm.npy``), which
  ``brain2text decode --norm train`` normalises a new file of that day with.

Pure functions of arrays; :class:`~brain2text.data.manifest.FeatureSpec` records the choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from brain2text.data.feature_spec import KIND_2023, KIND_B2T25, DayNorm, FeatureSpec
from brain2text.data.matfile import (
    DEFAULT_FIELDS,
    ELECTRODES_PER_ARRAY,
    FEATURE_FIELDS,
    RawSession,
)
from brain2text.errors import ConfigError

# columns of each area in tx1..tx4 and spikePow
ARRAY_COLUMNS = {
    "6v": slice(0, ELECTRODES_PER_ARRAY),
    "44": slice(ELECTRODES_PER_ARRAY, 2 * ELECTRODES_PER_ARRAY),
}
DEFAULT_FEATURES, DEFAULT_ARRAYS = DEFAULT_FIELDS, ("6v",)  # the standard preparation's
ZSCORE_EPS = 1e-8

# B2T'25: the released input_features, whole
B2T25_FIELDS = ("input_features",)
B2T25_ARRAYS = ("ventral 6v", "area 4", "55b", "dorsal 6v")
B2T25_FEATURE_NAMES = (
    "tx (threshold crossings, -4.5 RMS) x 256 electrodes: ventral 6v, area 4, "
    "55b, dorsal 6v (64 each)",
    "spike-band power x the same 256 electrodes",
)


# --- selection ----------------------------------------------------------------------------


def check_feature_choice(features: Sequence[str], arrays: Sequence[str]) -> None:
    """One-line ConfigError for a feature set that the 2023 files do not hold."""
    for flag, given, known in (
        ("--features", features, FEATURE_FIELDS),
        ("--arrays", arrays, tuple(ARRAY_COLUMNS)),
    ):
        unknown = [g for g in given if g not in known]
        if not given or unknown or len(set(given)) < len(given):
            raise ConfigError(
                f"{flag} {','.join(given)}: choose distinct names among {', '.join(known)}"
            )


def feature_names(features: Sequence[str], arrays: Sequence[str]) -> list[str]:
    """One name per block of ELECTRODES_PER_ARRAY columns, in the prepared order."""
    return [
        f"{f} of area {a} ({ELECTRODES_PER_ARRAY} electrodes)" for f in features for a in arrays
    ]


def describe_features(features: Sequence[str], arrays: Sequence[str], zscored: bool) -> str:
    columns = " + ".join(
        f"{f}[:, {ARRAY_COLUMNS[a].start}:{ARRAY_COLUMNS[a].stop}]"
        for f in features
        for a in arrays
    )
    return columns + (", z-scored per block" if zscored else ", as recorded")


def n_features_2023(features: Sequence[str], arrays: Sequence[str]) -> int:
    """Columns of a 2023 preparation: ELECTRODES_PER_ARRAY per field and array."""
    return len(features) * len(arrays) * ELECTRODES_PER_ARRAY


def spec_2023(features: Sequence[str], arrays: Sequence[str], normalization: str) -> FeatureSpec:
    """The spec of a 2023 preparation with these columns (no day statistics)."""
    return FeatureSpec(
        kind=KIND_2023,
        n_features=n_features_2023(features, arrays),
        fields=tuple(features),
        arrays=tuple(arrays),
        normalization=normalization,
        feature_names=tuple(feature_names(features, arrays)),
    )


def spec_b2t25(normalization: str, n_features: int) -> FeatureSpec:
    """The spec of a B2T'25 preparation (its ``n_features`` released columns)."""
    return FeatureSpec(
        kind=KIND_B2T25,
        n_features=n_features,
        fields=B2T25_FIELDS,
        arrays=B2T25_ARRAYS,
        normalization=normalization,
        feature_names=B2T25_FEATURE_NAMES,
    )


def trial_features(
    session: RawSession, i: int, arrays: Sequence[str] = DEFAULT_ARRAYS
) -> np.ndarray:
    """Trial ``i`` as (T, F) float64: the ELECTRODES_PER_ARRAY columns of each array of each
    field the session read, feature-major (by default tx1 then spikePow of area 6v)."""
    return np.concatenate(
        [matrix[i][:, ARRAY_COLUMNS[a]] for matrix in session.features.values() for a in arrays],
        axis=1,
    ).astype(np.float64, copy=False)


# --- normalisation ------------------------------------------------------------------------


def block_stats(
    trials: Sequence[np.ndarray], blocks: Sequence[int] | np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """block -> (mean, std), each (F,), over all bins of all trials of that block (ddof 0)."""
    blocks = np.asarray(blocks)
    stats = {}
    for block in np.unique(blocks):
        bins = np.concatenate(
            [trials[int(j)] for j in np.flatnonzero(blocks == block)]
        )  # (sum T, F)
        stats[int(block)] = (bins.mean(axis=0), bins.std(axis=0))
    return stats


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(T, F) -> (T, F) float32: ``(x - mean) / (std + 1e-8)`` as in the reference."""
    return ((x - mean) / (std + ZSCORE_EPS)).astype(np.float32)


def normalized(
    trials: Sequence[np.ndarray], blocks: Sequence[int] | np.ndarray, normalization: str
) -> Iterator[np.ndarray]:
    """Each trial (T_i, F) as prepared, float32, one at a time: z-scored with the statistics of
    its block over all ``trials`` (``block``), or as recorded (``none``)."""
    if normalization == "block":
        stats = block_stats(trials, blocks)
        for x, b in zip(trials, np.asarray(blocks), strict=True):
            yield zscore(x, *stats[int(b)])
    else:
        for x in trials:
            yield np.asarray(x, dtype=np.float32)


def zscore_blocks(
    trials: Sequence[np.ndarray], blocks: Sequence[int] | np.ndarray
) -> list[np.ndarray]:
    """Each trial z-scored with the statistics of its block over ``trials`` (float32)."""
    return list(normalized(trials, blocks, "block"))


def day_stats(trials: Sequence[np.ndarray]) -> DayNorm:
    """Mean and SD (ddof 0) per feature over every bin of ``trials`` (one day's training data)."""
    mean, std = block_stats(trials, np.zeros(len(trials), np.int64))[0]
    return DayNorm(mean, std)


def pack(rows: Iterable[np.ndarray], n_bins: int, width: int) -> np.ndarray:
    """Trials laid end to end: (sum T, width) float32, filled one trial at a time."""
    out = np.empty((n_bins, width), dtype=np.float32)
    start = 0
    for x in rows:
        out[start : start + len(x)] = x
        start += len(x)
    if start != n_bins:
        raise ValueError(f"{start} bins packed into an array of {n_bins}")
    return out
