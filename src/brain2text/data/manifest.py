"""The prepared format's schema: ``manifest.json`` as typed, frozen records, and the names of
the format's files (docs/prepared-format.md).

:func:`read_manifest` is the one reader of ``manifest.json`` (it checks the format, the version
and every field it types, each problem a one-line :class:`DataError` naming the file and the
key), :func:`write_manifest` the one writer. Files written before a key existed still load: a
manifest without ``n_features``, ``feature_fields``, ``arrays``, ``normalization`` or
``feature_names`` describes the standard 2023 preparation (:data:`STANDARD_2023`).

:class:`~brain2text.data.feature_spec.FeatureSpec` (also importable from here) says what a
bin's features are. The manifest's spec has no per-day training statistics: they live in each
train session's ``norm.npy`` (:attr:`PreparedDataset.feature_spec` adds them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brain2text.data.feature_spec import (
    KIND_2023,
    KINDS,
    N_FEATURES,
    NORMALIZATIONS,
    STANDARD_2023,
    FeatureSpec,
    FieldReader,
)
from brain2text.errors import DataError

FORMAT = "brain2text-prepared"
FORMAT_VERSION = 1
FEATURE_DTYPE_NAME = "float32"  # of features.npy
BIN_SECONDS = 0.02  # every row of features.npy is one 20 ms bin (both releases)
SPLITS = ("train", "val", "test", "competition")  # val: a release's own validation files
TRIAL_COLUMNS = ("start", "n_bins", "phone_start", "n_phones", "block", "trial")
UNKNOWN_DAY = -1  # day index of a session that matches no train session (pickle imports only)
UNKNOWN_BLOCK = -1  # block of a trial whose block is not recorded (pickle imports only)

MANIFEST_FILE = "manifest.json"
FEATURES_FILE = "features.npy"  # (sum T, n_features) float32
TRIALS_FILE = "trials.npy"  # (n_trials, 6) int64, columns TRIAL_COLUMNS
PHONEMES_FILE = "phonemes.npy"  # (sum n_phones,) uint8, ids 1..40
TEXT_FILE = "text.json"  # list of n_trials cleaned sentences
NORM_FILE = "norm.npy"  # train sessions (2023 layout): (2, F) mean and std of all the day's bins


@dataclass(frozen=True)
class SessionEntry:
    """One session of a split: where it came from and the sizes of its files."""

    source: str  # the raw file, e.g. "train/t12.2022.04.28.mat"
    day_index: int | None  # position in ``days``; None: no train session of that name
    n_trials: int
    n_bins: int  # rows of features.npy
    min_bins: int
    max_bins: int
    n_phones: int  # entries of phonemes.npy


@dataclass(frozen=True)
class SkippedTrial:
    """A trial ``prepare --skip-bad-trials`` left out."""

    file: str
    trial: int
    reason: str


@dataclass(frozen=True)
class SplitEntry:
    labelled: bool
    sessions: Mapping[str, SessionEntry]  # in day order
    skipped: tuple[SkippedTrial, ...] = ()

    @property
    def n_trials(self) -> int:
        return sum(s.n_trials for s in self.sessions.values())

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


@dataclass(frozen=True)
class LabelMismatch:
    """A B2T'25 trial whose released phoneme ids differ from this project's phonemisation."""

    file: str
    trial: int
    group: str
    sentence: str
    released: str  # phoneme symbols, space-separated
    ours: str  # or "(cannot phonemise)"


@dataclass(frozen=True)
class LabelCheck:
    """Released labels checked against this project's phonemisation (B2T'25)."""

    n_checked: int
    n_mismatched: int
    listed: tuple[LabelMismatch, ...]  # the first ones
    what: str


@dataclass(frozen=True)
class PhonemizerInfo:
    """The ``phonemizer`` entry: which phonemiser made the labels, kept as the phonemiser
    described itself (``describe()``: its rules, versions and counts)."""

    entry: Mapping[str, Any]

    @property
    def name(self) -> str:  # "cmu" or "reference"
        return str(self.entry.get("name", "cmu"))

    @property
    def lexicon_path(self) -> str | None:
        """The user lexicon the labels were made with, or None."""
        lexicon = self.entry.get("lexicon") or {}
        return None if lexicon.get("path") is None else str(lexicon["path"])

    @property
    def guessed(self) -> Mapping[str, Any]:
        """Words the ``reference`` phonemiser's network guessed (word -> phonemes)."""
        return self.entry.get("guessed") or {}

    @property
    def untagged_homographs(self) -> Mapping[str, int]:
        """Homograph tokens labelled without a POS tag (``reference``), with their counts."""
        return self.entry.get("untagged_homographs") or {}


@dataclass(frozen=True)
class Manifest:
    """A prepared folder's ``manifest.json``."""

    days: tuple[str, ...]  # train sessions sorted by name: the day index
    splits: Mapping[str, SplitEntry]
    features: FeatureSpec  # without day_norm (that is in the train sessions' norm.npy)
    feature_description: str  # one line, e.g. "tx1[:, 0:128] + spikePow[:, 0:128], z-scored ..."
    source: str  # the raw folder (or pickle) prepared
    phonemizer: PhonemizerInfo | None = None  # None: imported labels
    label_check: LabelCheck | None = None  # B2T'25 only
    imported_from: str | None = None  # pickle imports
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    brain2text_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def kind(self) -> str:
        return self.features.kind

    @property
    def n_features(self) -> int:
        return self.features.n_features

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, keys in the order ``manifest.json`` has always had."""
        spec = self.features
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": self.format_version,
            "kind": spec.kind,
            "n_features": spec.n_features,
            "feature_dtype": FEATURE_DTYPE_NAME,
            "features": self.feature_description,
            "trial_columns": list(TRIAL_COLUMNS),
            "days": list(self.days),
            "splits": {name: _split_dict(s) for name, s in self.splits.items()},
            "source": self.source,
            "feature_names": list(spec.feature_names),
            "feature_fields": list(spec.fields),
            "arrays": list(spec.arrays),
            "normalization": spec.normalization,
        }
        if self.phonemizer is not None:
            out["phonemizer"] = dict(self.phonemizer.entry)
        if self.label_check is not None:
            c = self.label_check
            out["label_check"] = {
                "n_checked": c.n_checked,
                "n_mismatched": c.n_mismatched,
                "listed": [vars(m).copy() for m in c.listed],
                "what": c.what,
            }
        if self.imported_from is not None:
            out["imported_from"] = self.imported_from
        out["created"] = self.created
        out["brain2text_version"] = self.brain2text_version
        return out


def _split_dict(split: SplitEntry) -> dict[str, Any]:
    return {
        "labelled": split.labelled,
        "sessions": {name: vars(s).copy() for name, s in split.sessions.items()},
        "n_trials": split.n_trials,
        "n_skipped": split.n_skipped,
        "skipped": [vars(s).copy() for s in split.skipped],
    }


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``folder/manifest.json`` (the last file of a prepared folder); return its path."""
    file = Path(folder) / MANIFEST_FILE
    file.write_text(json.dumps(manifest.to_dict(), indent=1) + "\n", encoding="utf-8")
    return file


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a prepared folder, after checking its format, version and fields."""
    file = Path(folder) / MANIFEST_FILE
    if not file.is_file():
        raise DataError(
            f"{folder}: no {MANIFEST_FILE}, so this is not a prepared dataset "
            "(an interrupted `brain2text prepare` leaves none: run it again)"
        )
    try:
        d = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{file}: unreadable ({' '.join(str(exc).split())}); prepare the dataset again"
        ) from exc
    return manifest_from_dict(d, file)


def manifest_from_dict(d: Any, file: Path | str) -> Manifest:
    """A parsed ``manifest.json`` (``file``: where it came from, for messages) as a Manifest."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        found = d.get("format") if isinstance(d, dict) else None
        raise DataError(
            f"{file}: not a brain2text prepared dataset (format {found!r}, expected {FORMAT!r})"
        )
    version = d.get("format_version")
    if version != FORMAT_VERSION:
        advice = (
            "update brain2text"
            if isinstance(version, int) and version > FORMAT_VERSION
            else "prepare the dataset again"
        )
        raise DataError(
            f"{file}: format_version {version!r}, but this brain2text reads "
            f"version {FORMAT_VERSION}: {advice}"
        )
    r = FieldReader(str(file), "; prepare the dataset again")
    days = r.required(d, "days", list)
    if not all(isinstance(day, str) for day in days):
        raise DataError(f"{file}: 'days' must be a list of session names")
    splits = {}
    for name, entry in r.required(d, "splits", dict).items():
        if name not in SPLITS:
            raise DataError(f"{file}: unknown split {name!r} (expected {', '.join(SPLITS)})")
        splits[name] = _split(r, entry, f"splits.{name}")
    spec = FeatureSpec(
        kind=r.choice(d, "kind", KINDS, KIND_2023),
        n_features=r.count(d, "n_features", N_FEATURES),
        fields=r.names(d, "feature_fields", STANDARD_2023.fields),
        arrays=r.names(d, "arrays", STANDARD_2023.arrays),
        normalization=r.choice(d, "normalization", NORMALIZATIONS, "block"),
        feature_names=r.names(d, "feature_names", ()),
    )
    phonemizer = r.get(d, "phonemizer", dict, None)
    check = r.get(d, "label_check", dict, None)
    return Manifest(
        days=tuple(days),
        splits=splits,
        features=spec,
        feature_description=str(d.get("features", "")),
        source=str(d.get("source", "")),
        phonemizer=None if phonemizer is None else PhonemizerInfo(phonemizer),
        label_check=None if check is None else _label_check(r, check),
        imported_from=r.get(d, "imported_from", str, None),
        created=str(d.get("created", "")),
        brain2text_version=str(d.get("brain2text_version", "")),
        format_version=version,
    )


def _split(r: FieldReader, entry: Any, where: str) -> SplitEntry:
    if not isinstance(entry, dict):
        raise DataError(f"{r.where}: '{where}' must be an object")
    sessions = {}
    for name, info in r.required(entry, "sessions", dict, where).items():
        at = f"{where}.sessions.{name}"
        if not isinstance(info, dict):
            raise DataError(f"{r.where}: '{at}' must be an object")
        day_index = info.get("day_index")
        sessions[name] = SessionEntry(
            source=str(info.get("source", f"{where.split('.')[-1]}/{name}")),
            day_index=day_index if isinstance(day_index, int) else None,
            n_trials=r.required(info, "n_trials", int, at),
            n_bins=r.required(info, "n_bins", int, at),
            min_bins=int(info.get("min_bins", 0)),
            max_bins=int(info.get("max_bins", 0)),
            n_phones=r.required(info, "n_phones", int, at),
        )
    skipped = tuple(
        SkippedTrial(str(s.get("file", "")), int(s.get("trial", -1)), str(s.get("reason", "")))
        for s in r.get(entry, "skipped", list, [])
        if isinstance(s, dict)
    )
    return SplitEntry(r.required(entry, "labelled", bool, where), sessions, skipped)


def _label_check(r: FieldReader, d: dict) -> LabelCheck:
    listed = tuple(
        LabelMismatch(
            file=str(m.get("file", "")),
            trial=int(m.get("trial", -1)),
            group=str(m.get("group", "")),
            sentence=str(m.get("sentence", "")),
            released=str(m.get("released", "")),
            ours=str(m.get("ours", "")),
        )
        for m in r.get(d, "listed", list, [])
        if isinstance(m, dict)
    )
    return LabelCheck(
        n_checked=r.required(d, "n_checked", int, "label_check"),
        n_mismatched=r.required(d, "n_mismatched", int, "label_check"),
        listed=listed,
        what=str(d.get("what", "")),
    )
