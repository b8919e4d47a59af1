"""A recording nobody prepared, turned into the features a checkpoint was trained on.

``read_recording(path, spec)`` takes a ``competitionData`` day file (``.mat``), a Brain-to-Text
'25 split file (``data_*.hdf5``) or a B2T'25 session folder (every split file in it) and
computes each trial's features as ``prepare`` did for the checkpoint's data (``spec``: the
checkpoint's :class:`~brain2text.data.manifest.FeatureSpec`): the same fields and arrays, and
block-wise z-scoring from the file's own statistics when the data was z-scored per block
(:mod:`brain2text.data.features`); or, with ``norm="train"``, z-scoring with the statistics of
that day's training data (recorded by ``prepare`` for every training day of the 2023 layout,
and carried by the checkpoint), for a file too short to hold reliable block statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text.data.b2t25 import SPLIT_FILES, read_b2t25_file
from brain2text.data.feature_spec import KIND_B2T25, STANDARD_2023, FeatureSpec
from brain2text.data.features import normalized, trial_features, zscore
from brain2text.data.matfile import feature_problem, read_session
from brain2text.errors import ConfigError, DataError

NORMS = ("file", "train")  # --norm: the file's own block statistics, or the training day's


@dataclass(frozen=True, eq=False)
class RawTrial:
    source: str  # the file
    trial: int  # its index in the file
    day: str  # the session the file belongs to
    block: int
    features: np.ndarray  # (T, n_features) float32
    sentence: str  # "" when the file carries none


def read_recording(
    path: Path, spec: FeatureSpec | None = None, norm: str = "file", day: str | None = None
) -> list[RawTrial]:
    """Every trial of ``path`` as the checkpoint's features (``day``: the session's name when
    it is not the file's)."""
    spec = spec or STANDARD_2023
    path = Path(path)
    if norm not in NORMS:
        raise ConfigError(f"--norm {norm}: choose one of {', '.join(NORMS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if norm == "train" and spec.normalization != "block":
        raise ConfigError(
            f"--norm train: the checkpoint's data was not z-scored "
            f"({spec.normalization}); its features are taken as recorded"
        )
    # norm="train": as read (float64 for .mat files) until the day's statistics z-score them
    normalization = spec.normalization if norm == "file" else None
    if spec.kind == KIND_B2T25:
        trials = [
            t for split, f in _b2t25_files(path) for t in _b2t25_trials(f, split, normalization)
        ]
    elif path.suffix != ".mat":
        raise DataError(
            f"{path}: the checkpoint was trained on competitionData features; give "
            "one of its .mat day files"
        )
    else:
        trials = _mat_trials(path, spec, normalization)
    if norm == "train":
        return [_with_train_norm(t, spec, day or t.day) for t in trials]
    return trials


def _with_train_norm(trial: RawTrial, spec: FeatureSpec, day: str) -> RawTrial:
    stats = spec.day_norm.get(day)
    if stats is None:
        known = ", ".join(sorted(spec.day_norm)[:3])
        raise DataError(
            f"--norm train: the checkpoint holds no training statistics of day "
            f"{day} ({'days with them: ' + known + ', ...' if known else 'none'}; "
            "use --norm file)"
        )
    return RawTrial(
        trial.source,
        trial.trial,
        trial.day,
        trial.block,
        zscore(trial.features, stats.mean, stats.std),
        trial.sentence,
    )


def _mat_trials(path: Path, spec: FeatureSpec, normalization: str | None) -> list[RawTrial]:
    session = read_session(path, labelled=True, check_trials=False, fields=spec.fields)
    for i in range(session.n_trials):  # a blank sentence is fine here (hold-out files)
        if (problem := feature_problem(session, i)) is not None:
            raise DataError(f"{session.where(i)}: {problem}")
    feats = [trial_features(session, i, spec.arrays) for i in range(session.n_trials)]
    rows = feats if normalization is None else normalized(feats, session.block_idx, normalization)
    return [
        RawTrial(str(path), i, session.name, int(session.block_idx[i]), x, session.sentences[i])
        for i, x in enumerate(rows)
    ]


def _b2t25_files(path: Path) -> list[tuple[str, Path]]:
    by_name = {name: split for split, name in SPLIT_FILES.items()}
    if path.is_file():
        if path.name not in by_name:
            raise DataError(
                f"{path}: not a Brain-to-Text '25 split file ({', '.join(SPLIT_FILES.values())})"
            )
        return [(by_name[path.name], path)]
    files = [(split, path / name) for split, name in SPLIT_FILES.items() if (path / name).is_file()]
    if not files:
        raise DataError(
            f"{path}: a Brain-to-Text '25 session folder holds "
            f"{', '.join(SPLIT_FILES.values())}; none is here"
        )
    return files


def _b2t25_trials(path: Path, split: str, normalization: str | None) -> list[RawTrial]:
    raw = read_b2t25_file(path, split)
    rows = (
        raw.features
        if normalization is None
        else normalized(raw.features, raw.block_num, normalization)
    )
    return [
        RawTrial(
            str(path),
            i,
            raw.session,
            int(raw.block_num[i]),
            np.asarray(x, dtype=np.float32),
            raw.sentences[i],
        )
        for i, x in enumerate(rows)
    ]
