"""Read a prepared dataset (see docs/prepared-format.md): the arrays training memory-maps.

Opening reads the manifest, every session's small index arrays and the headers of its feature
file; features stay on disk. They are float32 on disk, as training uses them: no conversion
when a batch is built, and evaluation reads exactly the values every machine reads (float16
would halve the disk and page cache but change the inputs).

Reading a trial: :meth:`PreparedSplit.copy_features` copies it out of the mapped file and then
releases the pages it used (:mod:`brain2text.data.mapped`), so a process that reads every
trial, epoch after epoch, keeps only what it is copying resident: its peak memory does not grow
with the number of days. :meth:`PreparedSplit.features` returns a read-only view of the mapping
instead (no copy, pages kept until the dataset is dropped), for inspection and tests.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from brain2text.data.feature_spec import N_FEATURES as N_FEATURES  # re-exported
from brain2text.data.feature_spec import DayNorm, FeatureSpec
from brain2text.data.manifest import (
    FEATURES_FILE,
    NORM_FILE,
    PHONEMES_FILE,
    TEXT_FILE,
    TRIAL_COLUMNS,
    TRIALS_FILE,
    UNKNOWN_DAY,
    Manifest,
    SessionEntry,
    SplitEntry,
    read_manifest,
)
from brain2text.data.manifest import MANIFEST_FILE as MANIFEST_FILE  # re-exported
from brain2text.data.mapped import MappedNpy, map_npy
from brain2text.errors import DataError
from brain2text.phonemes import PHONEMES

FEATURE_DTYPE = np.dtype(np.float32)

_START, _N_BINS, _PHONE_START, _N_PHONES, _BLOCK, _TRIAL = range(len(TRIAL_COLUMNS))


class PreparedSplit:
    """The trials of one split, sessions in day order, trials in file order within a session."""

    def __init__(
        self,
        name: str,
        sessions: list[str],
        sources: list[str],
        labelled: bool,
        day_of_session: list[int],
        trials: list[np.ndarray],
        features: list[MappedNpy],
        phonemes: list[np.ndarray],
        texts: list[list[str]],
    ) -> None:
        self.name = name
        self.sessions = sessions
        self.labelled = labelled
        self._sources = sources
        self._features = features  # per session: (sum T, 256) float32, mapped read-only
        self._phonemes = phonemes  # per session: (sum n_phones,) uint8
        self._texts = texts
        table = np.concatenate(trials) if trials else np.zeros((0, len(TRIAL_COLUMNS)), np.int64)
        counts = [len(t) for t in trials]
        self._session = np.repeat(np.arange(len(sessions), dtype=np.int64), counts)  # (N,)
        first = (
            np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            if counts
            else np.zeros(0, np.int64)
        )
        self._local = np.arange(len(self._session)) - np.repeat(first, counts)  # index in session
        column = lambda k: np.ascontiguousarray(table[:, k])  # noqa: E731
        self._start, self._phone_start = column(_START), column(_PHONE_START)
        self.n_bins = column(_N_BINS)  # (N,) int64
        self.n_phones = column(_N_PHONES)
        self.block = column(_BLOCK)
        self.trial = column(_TRIAL)
        self.day_index = np.asarray(day_of_session, dtype=np.int64)[self._session]
        for array in (self.n_bins, self.n_phones, self.block, self.trial, self.day_index):
            array.flags.writeable = False

    def __len__(self) -> int:
        return len(self._session)

    def __repr__(self) -> str:
        return (
            f"PreparedSplit({self.name!r}, {len(self.sessions)} sessions, {len(self)} trials, "
            f"{'labelled' if self.labelled else 'unlabelled'})"
        )

    def session_of(self, i: int) -> str:
        return self.sessions[self._session[self._check(i)]]

    def features(self, i: int) -> np.ndarray:
        """(T, 256) float32, a read-only view of the memory-mapped file (no copy).

        Pages read through a view stay resident; batch building uses :meth:`copy_features`.
        """
        i = self._check(i)
        start = self._start[i]
        return self._features[self._session[i]].array[start : start + self.n_bins[i]]

    def copy_features(self, i: int, out: np.ndarray | None = None) -> np.ndarray:
        """(T, 256) trial ``i`` copied into ``out`` (or a new float32 array); the pages it was
        read from are then released, so reading every trial does not keep the dataset resident.
        """
        i = self._check(i)
        start = int(self._start[i])
        return self._features[self._session[i]].copy_rows(start, start + int(self.n_bins[i]), out)

    def phonemes(self, i: int) -> np.ndarray:
        """(n_phones,) int64 ids 1..40; empty when the split is unlabelled."""
        i = self._check(i)
        start = self._phone_start[i]
        return self._phonemes[self._session[i]][start : start + self.n_phones[i]].astype(np.int64)

    def text(self, i: int) -> str:
        """The cleaned sentence ("" when unlabelled)."""
        i = self._check(i)
        return self._texts[self._session[i]][self._local[i]]

    def describe(self, i: int) -> str:
        """Where trial ``i`` came from, for messages: "train/t12.2022.04.28.mat trial 17"."""
        i = self._check(i)
        return f"{self._sources[self._session[i]]} trial {self.trial[i]}"

    def _check(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"trial {i} out of range for the {self.name} split ({n} trials)")
        return int(i) % n


class PreparedDataset:
    """A prepared folder: the manifest, the day list and its splits."""

    def __init__(self, path: Path, manifest: Manifest, splits: dict[str, PreparedSplit]) -> None:
        self.path = path
        self.manifest = manifest
        self.days: list[str] = list(manifest.days)  # train sessions sorted: the day index
        self.n_features: int = manifest.n_features
        self._splits = splits

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}: {len(split)}" for name, split in self._splits.items())
        return f"PreparedDataset({str(self.path)!r}, {self.n_days} days, {parts})"

    @property
    def n_days(self) -> int:
        return len(self.days)

    @functools.cached_property
    def feature_spec(self) -> FeatureSpec:
        """What a bin's features are: enough to compute them again from a raw file, with the
        training statistics of every day that has them (``norm.npy``, written by prepare for
        the 2023 layout's train sessions). Read once: every best.pt a run saves carries it."""
        stats = {}
        for day in self.days:
            file = self.path / "train" / day / NORM_FILE
            if file.is_file():
                mean, std = np.load(file, allow_pickle=False)
                stats[day] = DayNorm(mean, std)
        return replace(self.manifest.features, day_norm=stats)

    def has_split(self, name: str) -> bool:
        return name in self._splits

    def split(self, name: str) -> PreparedSplit:
        if name not in self._splits:
            present = ", ".join(self._splits) or "none"
            raise DataError(
                f"{self.path}: no {name!r} split in this prepared dataset (it has: {present})"
            )
        return self._splits[name]


def open_prepared(path: Path) -> PreparedDataset:
    """Open a prepared folder, checking every file against the manifest (features not read)."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path}: no such folder (make it with `brain2text prepare RAW_DIR {path}`)"
        )
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (a prepared dataset is a folder with manifest.json)")
    manifest = read_manifest(path)
    splits = {
        name: _open_split(path, name, entry, manifest.days, manifest.n_features)
        for name, entry in manifest.splits.items()
    }
    return PreparedDataset(path, manifest, splits)


def _open_split(
    root: Path, name: str, entry: SplitEntry, days: tuple[str, ...], n_features: int
) -> PreparedSplit:
    names, sources, day_of_session = [], [], []
    trials, features, phonemes, texts = [], [], [], []
    for session, info in entry.sessions.items():
        table, feats, phones, text = _open_session(root / name / session, info, n_features)
        names.append(session)
        sources.append(info.source)
        day_of_session.append(days.index(session) if session in days else UNKNOWN_DAY)
        trials.append(table)
        features.append(feats)
        phonemes.append(phones)
        texts.append(text)
    return PreparedSplit(
        name, names, sources, entry.labelled, day_of_session, trials, features, phonemes, texts
    )


def _open_session(
    folder: Path, info: SessionEntry, n_features: int
) -> tuple[np.ndarray, MappedNpy, np.ndarray, list[str]]:
    n_trials, n_bins, n_phones = info.n_trials, info.n_bins, info.n_phones
    features = _map_features(folder / FEATURES_FILE, (n_bins, n_features))
    table = _load_npy(folder / TRIALS_FILE, (n_trials, len(TRIAL_COLUMNS)), np.dtype(np.int64))
    phonemes = _load_npy(folder / PHONEMES_FILE, (n_phones,), np.dtype(np.uint8))
    text = _load_text(folder / TEXT_FILE, n_trials)

    # The index must tile the feature and phoneme files exactly, trial after trial.
    lengths, phone_lengths = table[:, _N_BINS], table[:, _N_PHONES]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n_trials else lengths
    phone_starts = np.concatenate([[0], np.cumsum(phone_lengths)[:-1]]) if n_trials else lengths
    if (
        np.any(lengths < 0)
        or np.any(phone_lengths < 0)
        or not np.array_equal(table[:, _START], starts)
        or int(lengths.sum()) != n_bins
        or not np.array_equal(table[:, _PHONE_START], phone_starts)
        or int(phone_lengths.sum()) != n_phones
    ):
        raise DataError(
            f"{folder / TRIALS_FILE}: trial index inconsistent with the manifest; "
            "prepare the dataset again"
        )
    if phonemes.size and (phonemes.min() < 1 or phonemes.max() > len(PHONEMES)):
        raise DataError(
            f"{folder / PHONEMES_FILE}: ids outside 1..{len(PHONEMES)}; prepare the dataset again"
        )
    return table, features, phonemes, text


def _map_features(file: Path, shape: tuple[int, ...]) -> MappedNpy:
    _check_present(file)
    try:
        mapped = map_npy(file)
    except (OSError, ValueError, EOFError) as exc:
        raise _unreadable(file, exc) from exc
    _check_array(file, mapped.array, shape, FEATURE_DTYPE)
    return mapped


def _load_npy(file: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    _check_present(file)
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _unreadable(file, exc) from exc
    _check_array(file, array, shape, dtype)
    return array


def _check_present(file: Path) -> None:
    if not file.is_file():
        raise DataError(f"{file}: missing; the prepared dataset is incomplete: prepare it again")


def _unreadable(file: Path, exc: BaseException) -> DataError:
    return DataError(
        f"{file}: unreadable or shorter than its header says "
        f"({' '.join(str(exc).split())}); prepare the dataset again"
    )


def _check_array(file: Path, array: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if array.shape != shape or array.dtype != dtype:
        raise DataError(
            f"{file}: holds {array.dtype} {array.shape}, the manifest expects "
            f"{dtype} {shape}; prepare the dataset again"
        )


def _load_text(file: Path, n_trials: int) -> list[str]:
    if not file.is_file():
        raise DataError(f"{file}: missing; the prepared dataset is incomplete: prepare it again")
    try:
        text = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{file}: unreadable ({' '.join(str(exc).split())}); prepare the dataset again"
        ) from exc
    if (
        not isinstance(text, list)
        or len(text) != n_trials
        or not all(isinstance(t, str) for t in text)
    ):
        raise DataError(
            f"{file}: expected a list of {n_trials} sentences; prepare the dataset again"
        )
    return text
