"""Read one Brain-to-Text '25 (B2T'25) HDF5 file, and tell which raw layout a folder holds.

The B2T'25 release is ``hdf5_data_final/t15.YYYY.MM.DD/data_{train,val,test}.hdf5`` (a few
sessions have only a train file). Each file holds groups ``trial_0000``, ``trial_0001``, ... in
recording order; each group holds:

- ``input_features``: T x 512 float32, 20 ms bins; columns 0-255 threshold crossings,
  256-511 spike-band power;
- ``seq_class_ids``: phoneme ids padded with 0, the first ``seq_len`` valid
  (blank 0, AA..ZH 1-39, SIL 40);
- ``transcription``: character codes, 0-terminated (not read here);
- attributes ``n_time_steps``, ``seq_len``, ``sentence_label`` (str, bytes or numpy str),
  ``session``, ``block_num``, ``trial_num``.

Test files have no ``seq_class_ids``, ``transcription``, ``seq_len`` or ``sentence_label``.
Every problem is a :class:`DataError` with a one-line message naming the file (and the group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.errors import DataError
from brain2text.phonemes import N_CLASSES

N_FEATURES_B2T25 = 512
SPLIT_FILES = {"train": "data_train.hdf5", "val": "data_val.hdf5", "test": "data_test.hdf5"}
LABELLED_SPLITS = ("train", "val")
ROOT_FOLDER = "hdf5_data_final"
SESSION_GLOB = "t15.*"
_TRIAL_NAME = re.compile(r"trial_(\d+)")
# Same folders as RAW_SPLITS in prepare.py (not imported: prepare may import this module).
_COMPETITION_HINT = "competitionData: train/ (and test/, competitionHoldOut/) of .mat files"
_B2T25_HINT = f"B2T'25: {ROOT_FOLDER}/t15.YYYY.MM.DD/data_{{train,val,test}}.hdf5"


@dataclass(frozen=True, eq=False)
class B2T25File:
    """One split file of one session, trials in the numeric order of their groups (S trials)."""

    session: str  # session folder name, e.g. "t15.2023.08.11"
    split: str  # "train", "val" or "test"
    path: Path
    features: list[np.ndarray]  # (S,) of (T_i, 512) float32
    phoneme_ids: list[np.ndarray] | None  # (S,) of (L_i,) int64 ids 1..40; None if unlabelled
    sentences: list[str]  # (S,) stripped; "" when unlabelled
    block_num: np.ndarray  # (S,) int64
    trial_num: np.ndarray  # (S,) int64
    labelled: bool
    groups: list[str] = field(default_factory=list)  # (S,) group names, e.g. "trial_0003"

    @property
    def n_trials(self) -> int:
        return len(self.features)

    def where(self, trial: int | str | None = None) -> str:
        """``path`` or ``path trial_0003`` (trial: an index or a group name): message prefix."""
        if isinstance(trial, int):
            trial = self.groups[trial] if trial < len(self.groups) else f"trial_{trial:04d}"
        return str(self.path) if trial is None else f"{self.path} {trial}"


def read_b2t25_file(path: Path, split: str) -> B2T25File:
    """Read every trial of one file; labels only for train and val (a test file never)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_FILES)}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    import h5py

    labelled = split in LABELLED_SPLITS
    try:
        with h5py.File(path, "r") as f:
            groups = _trial_groups(path, f)
            trials = [_read_trial(path, name, f[name], labelled) for name in groups]
    except OSError as exc:  # not HDF5, or cut short (a trial's own read errors say which)
        raise DataError(
            f"{path}: not a readable HDF5 file ({_one_line(exc)}); it may be "
            "truncated or corrupt: copy it again"
        ) from exc
    columns = (list(column) for column in zip(*trials, strict=True))
    features, ids, sentences, blocks, numbers = columns
    return B2T25File(
        session=path.parent.name,
        split=split,
        path=path,
        features=features,
        phoneme_ids=ids if labelled else None,
        sentences=sentences,
        block_num=np.array(blocks, dtype=np.int64),
        trial_num=np.array(numbers, dtype=np.int64),
        labelled=labelled,
        groups=groups,
    )


def _trial_groups(path: Path, f: Any) -> list[str]:
    """The trial group names, in numeric order (trial_10000 after trial_9999)."""
    import h5py

    numbered: dict[int, str] = {}
    for name in f.keys():
        match = _TRIAL_NAME.fullmatch(name)
        if match is None:
            raise DataError(
                f"{path}: unexpected entry {name!r} (expected only groups "
                "trial_0000, trial_0001, ...)"
            )
        if f.get(name, getclass=True) is not h5py.Group:
            raise DataError(f"{path} {name}: not a group (expected a trial group)")
        number = int(match.group(1))
        if number in numbered:
            raise DataError(f"{path} {name}: same trial number as {numbered[number]}")
        numbered[number] = name
    if not numbered:
        raise DataError(f"{path}: no trial groups (expected trial_0000, trial_0001, ...)")
    return [numbered[n] for n in sorted(numbered)]


def _read_trial(
    path: Path, name: str, group: Any, labelled: bool
) -> tuple[np.ndarray, np.ndarray | None, str, int, int]:
    where = f"{path} {name}"
    try:
        features = _features(where, group)
        block = _whole_number(where, group, "block_num")
        trial = _whole_number(where, group, "trial_num")
        if not labelled:
            return features, None, "", block, trial
        return features, _phoneme_ids(where, group), _sentence(where, group), block, trial
    except OSError as exc:  # a dataset cut short in a truncated file
        raise DataError(
            f"{where}: cannot read it ({_one_line(exc)}); the file may be "
            "truncated or corrupt: copy it again"
        ) from exc


def _features(where: str, group: Any) -> np.ndarray:
    raw = np.asarray(_dataset(where, group, "input_features", "")[()])
    if raw.ndim != 2 or raw.dtype.kind not in "buif" or raw.shape[1] != N_FEATURES_B2T25:
        raise DataError(
            f"{where}: input_features is {_describe(raw)}, "
            f"expected a T x {N_FEATURES_B2T25} numeric matrix"
        )
    if raw.shape[0] == 0:
        raise DataError(f"{where}: input_features has no time bins")
    if "n_time_steps" in group.attrs:
        steps = _whole_number(where, group, "n_time_steps")
        if steps != raw.shape[0]:
            raise DataError(
                f"{where}: n_time_steps is {steps} but input_features has {raw.shape[0]} rows"
            )
    features = raw.astype(np.float32, copy=False)
    n_bad = features.size - int(np.count_nonzero(np.isfinite(features)))
    if n_bad:
        raise DataError(
            f"{where}: input_features holds {n_bad} NaN/Inf value{'s' if n_bad > 1 else ''}"
        )
    return features


def _phoneme_ids(where: str, group: Any) -> np.ndarray:
    dataset = _dataset(where, group, "seq_class_ids", " in a labelled file")
    seq_len = _whole_number(where, group, "seq_len", " in a labelled file")
    ids = np.asarray(dataset[()])
    if ids.ndim != 1 or ids.dtype.kind not in "biu":
        raise DataError(f"{where}: seq_class_ids is {_describe(ids)}, expected 1-D integers")
    if seq_len < 1:
        raise DataError(f"{where}: seq_len is {seq_len}, expected at least 1")
    if seq_len > ids.size:
        raise DataError(f"{where}: seq_len is {seq_len} but seq_class_ids has {ids.size} ids")
    valid = ids[:seq_len].astype(np.int64)
    bad = valid[(valid < 0) | (valid >= N_CLASSES)]  # blank 0, AA..ZH 1-39, SIL 40
    if bad.size:
        raise DataError(f"{where}: seq_class_ids holds {int(bad[0])}, outside 0..{N_CLASSES - 1}")
    blanks = np.flatnonzero(valid == 0)
    if blanks.size:
        raise DataError(
            f"{where}: seq_class_ids holds a blank (0) at position {int(blanks[0])} "
            f"of the {seq_len} valid ids"
        )
    return valid


def _sentence(where: str, group: Any) -> str:
    if "sentence_label" not in group.attrs:
        raise DataError(f"{where}: no sentence_label attribute in a labelled file")
    value = group.attrs["sentence_label"]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise DataError(f"{where}: sentence_label is {_describe(value)}, not text")
    return value.strip()


def _dataset(where: str, group: Any, name: str, context: str) -> Any:
    import h5py

    kind = group.get(name, getclass=True)
    if kind is not h5py.Dataset:
        raise DataError(
            f"{where}: {name} is not a dataset" if kind else f"{where}: no {name} dataset{context}"
        )
    return group[name]


def _whole_number(where: str, group: Any, name: str, context: str = "") -> int:
    if name not in group.attrs:
        raise DataError(f"{where}: no {name} attribute{context}")
    value = group.attrs[name]
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "buif" or not np.isfinite(array).all():
        raise DataError(f"{where}: {name} is {_describe(value)}, expected one number")
    number = float(array.reshape(()))
    if number != round(number):
        raise DataError(f"{where}: {name} is {number:g}, not a whole number")
    return int(number)


# --- layout -------------------------------------------------------------------------------


def detect_layout(raw_dir: Path) -> str:
    """``"competitionData"`` or ``"b2t25"``: which raw layout ``raw_dir`` holds."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(
            f"{raw_dir}: no such folder (expected {_COMPETITION_HINT}; or {_B2T25_HINT})"
        )
    competition = any(not p.name.startswith(".") for p in (raw_dir / "train").glob("*.mat"))
    root = _b2t25_root(raw_dir)
    if competition and root is not None:
        raise DataError(
            f"{raw_dir}: mixed layouts: both train/*.mat (competitionData) and "
            f"t15.* session folders (B2T'25); keep one layout per folder"
        )
    if competition:
        return "competitionData"
    if root is None:
        raise DataError(
            f"{raw_dir}: neither raw layout found (expected {_COMPETITION_HINT}; "
            f"or {_B2T25_HINT}, or the {ROOT_FOLDER} folder itself)"
        )
    for folder in _session_folders(root):
        _split_files(folder)  # raises on an empty session folder
    return "b2t25"


def b2t25_sessions(raw_dir: Path) -> list[tuple[str, dict[str, Path]]]:
    """The session folders (by name: date order) and their split files, e.g.
    ``("t15.2023.08.11", {"train": .../data_train.hdf5})``."""
    raw_dir = Path(raw_dir)
    if detect_layout(raw_dir) != "b2t25":
        raise DataError(f"{raw_dir}: holds the competitionData layout, not B2T'25 ({_B2T25_HINT})")
    root = _b2t25_root(raw_dir) or raw_dir
    return [(folder.name, _split_files(folder)) for folder in _session_folders(root)]


def _b2t25_root(raw_dir: Path) -> Path | None:
    """``raw_dir/hdf5_data_final`` or ``raw_dir`` itself, whichever holds t15.* sessions."""
    for root in (raw_dir / ROOT_FOLDER, raw_dir):
        if root.is_dir() and _session_folders(root):
            return root
    return None


def _session_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(SESSION_GLOB) if p.is_dir())


def _split_files(folder: Path) -> dict[str, Path]:
    expected = ", ".join(SPLIT_FILES.values())
    for path in sorted(folder.glob("*.hdf5")):
        if path.name not in SPLIT_FILES.values() and not path.name.startswith("."):
            raise DataError(
                f"{path}: unexpected HDF5 file in a session folder (expected {expected})"
            )
    found = {
        split: folder / name for split, name in SPLIT_FILES.items() if (folder / name).is_file()
    }
    if not found:
        raise DataError(
            f"{folder}: B2T'25 session folder with no data_*.hdf5 files (expected {expected})"
        )
    return found


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {' x '.join(map(str, value.shape)) or 'scalar'} {value.dtype} array"
    return f"a {type(value).__name__}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
