"""A recording nobody prepared, turned into the features a checkpoint was trained on.

``read_recording(path, spec)`` takes a ``competitionData`` day file (``.mat``), a Brain-to-Text
'25 split file (``data_*.hdf5``) or a B2T'25 session folder (every split file in it) and
computes each trial's features as ``prepare`` did for the checkpoint's data (``spec``: the
``features`` entry of the checkpoint, :meth:`PreparedDataset.feature_spec`): the same fields
and arrays, and block-wise z-scoring from the file's own statistics when the data was
z-scored per block; or, with ``norm="train"``, z-scoring with the statistics of that day's
training data (recorded by ``prepare`` for every training day of the 2023 layout, and carried
by the checkpoint), for a file too short to hold reliable block statistics of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from brain2text.data.b2t25 import SPLIT_FILES, read_b2t25_file
from brain2text.data.matfile import feature_problem, read_session
from brain2text.data.prepare import trial_features, zscore, zscore_blocks
from brain2text.errors import ConfigError, DataError

STANDARD_2023 = {
    "kind": "competitionData",
    "n_features": 256,
    "fields": ["tx1", "spikePow"],
    "arrays": ["6v"],
    "normalization": "block",
    "feature_names": [],
}


@dataclass(frozen=True)
class RawTrial:
    source: str  # the file
    trial: int  # its index in the file
    day: str  # the session the file belongs to
    block: int
    features: np.ndarray  # (T, n_features) float32
    sentence: str  # "" when the file carries none


NORMS = ("file", "train")


def read_recording(
    path: Path, spec: dict | None = None, norm: str = "file", day: str | None = None
) -> list[RawTrial]:
    """Every trial of ``path`` as the checkpoint's features (``day``: the session's name when
    it is not the file's)."""
    spec = spec or STANDARD_2023
    path = Path(path)
    if norm not in NORMS:
        raise ConfigError(f"--norm {norm}: choose one of {', '.join(NORMS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if norm == "train" and spec["normalization"] != "block":
        raise ConfigError(
            f"--norm train: the checkpoint's data was not z-scored "
            f"({spec['normalization']}); its features are taken as recorded"
        )
    if spec["kind"] == "b2t25":
        files = _b2t25_files(path)
        trials = [t for split, f in files for t in _b2t25_trials(f, split, spec, norm)]
    elif path.suffix != ".mat":
        raise DataError(
            f"{path}: the checkpoint was trained on competitionData features; give "
            "one of its .mat day files"
        )
    else:
        trials = _mat_trials(path, spec, norm)
    if norm == "train":
        trials = [_with_train_norm(t, spec, day or t.day) for t in trials]
    return trials


def _with_train_norm(trial: RawTrial, spec: dict, day: str) -> RawTrial:
    stats = spec.get("day_norm", {}).get(day)
    if stats is None:
        known = ", ".join(sorted(spec.get("day_norm", {}))[:3])
        raise DataError(
            f"--norm train: the checkpoint holds no training statistics of day "
            f"{day} ({'days with them: ' + known + ', ...' if known else 'none'}; "
            "use --norm file)"
        )
    mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
    return replace(trial, features=zscore(trial.features, mean, std))


def _mat_trials(path: Path, spec: dict, norm: str = "file") -> list[RawTrial]:
    session = read_session(path, labelled=True, check_trials=False, fields=tuple(spec["fields"]))
    for i in range(session.n_trials):  # a blank sentence is fine here (hold-out files)
        if (problem := feature_problem(session, i)) is not None:
            raise DataError(f"{session.where(i)}: {problem}")
    feats = [trial_features(session, i, spec["arrays"]) for i in range(session.n_trials)]
    if spec["normalization"] == "block" and norm == "file":
        feats = zscore_blocks(feats, session.block_idx)
    return [
        RawTrial(
            str(path),
            i,
            session.name,
            int(session.block_idx[i]),
            np.asarray(f, dtype=np.float32 if norm == "file" else np.float64),
            session.sentences[i],
        )
        for i, f in enumerate(feats)
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


def _b2t25_trials(path: Path, split: str, spec: dict, norm: str = "file") -> list[RawTrial]:
    raw = read_b2t25_file(path, split)
    feats = raw.features
    if spec["normalization"] == "block" and norm == "file":
        feats = zscore_blocks(feats, raw.block_num)
    return [
        RawTrial(
            str(path),
            i,
            raw.session,
            int(raw.block_num[i]),
            np.asarray(f, dtype=np.float32),
            raw.sentences[i],
        )
        for i, f in enumerate(feats)
    ]
