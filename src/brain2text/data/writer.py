"""The one writer of the prepared format (docs/prepared-format.md): a session's files, the
manifest, and the staging that makes a folder appear whole or not at all.

Every ingestion path (2023 ``.mat`` files, B2T'25 HDF5 files, a reference pickle) turns a session
into one :class:`SessionArrays` and hands it to :func:`write_session`; the folder is written into
a hidden sibling (:func:`staging_dir`) and its manifest (:func:`finish`) last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text import __version__
from brain2text.atomic import OutputKind, check_output_folder, staged_folder
from brain2text.data.feature_spec import DayNorm, FeatureSpec
from brain2text.data.manifest import (
    FEATURES_FILE,
    FORMAT,
    MANIFEST_FILE,
    NORM_FILE,
    PHONEMES_FILE,
    TEXT_FILE,
    TRIAL_COLUMNS,
    TRIALS_FILE,
    LabelCheck,
    Manifest,
    PhonemizerInfo,
    SessionEntry,
    SkippedTrial,
    SplitEntry,
    write_manifest,
)


@dataclass(frozen=True, eq=False)
class SessionArrays:
    """One session as prepared: its trials laid end to end (n trials)."""

    features: np.ndarray  # (sum T, n_features) float32
    trials: np.ndarray  # (n, 6) int64, columns TRIAL_COLUMNS
    phonemes: np.ndarray  # (sum n_phones,) uint8, ids 1..40
    texts: list[str]  # (n,) cleaned sentences ("" when unlabelled)


def offsets(lengths: np.ndarray) -> np.ndarray:
    """(n,) lengths -> (n,) start of each item when they are laid end to end."""
    return (
        np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        if len(lengths)
        else (np.zeros(0, np.int64))
    )


def trial_table(
    lengths: np.ndarray, phone_lengths: np.ndarray, blocks: np.ndarray, numbers: np.ndarray
) -> np.ndarray:
    """(n, 6) int64 ``trials.npy`` of trials laid end to end in features and phonemes."""
    columns = [offsets(lengths), lengths, offsets(phone_lengths), phone_lengths, blocks, numbers]
    table = np.stack([np.asarray(c, dtype=np.int64) for c in columns], axis=1)
    return table.reshape(len(lengths), len(TRIAL_COLUMNS))


def write_session(
    folder: Path,
    arrays: SessionArrays,
    source: str,
    day_index: int | None,
    day_norm: DayNorm | None = None,
) -> SessionEntry:
    """Write one session's files (``norm.npy`` too when ``day_norm`` is given); return its
    manifest entry (``source``: the raw file, for messages)."""
    folder.mkdir(parents=True)
    np.save(folder / FEATURES_FILE, np.ascontiguousarray(arrays.features, dtype=np.float32))
    np.save(folder / TRIALS_FILE, arrays.trials.astype(np.int64))
    np.save(folder / PHONEMES_FILE, arrays.phonemes.astype(np.uint8))
    (folder / TEXT_FILE).write_text(json.dumps(arrays.texts, ensure_ascii=False), encoding="utf-8")
    if day_norm is not None:
        np.save(folder / NORM_FILE, np.stack([day_norm.mean, day_norm.std]))
    lengths = arrays.trials[:, TRIAL_COLUMNS.index("n_bins")]
    return SessionEntry(
        source=source,
        day_index=day_index,
        n_trials=len(arrays.trials),
        n_bins=int(arrays.features.shape[0]),
        min_bins=int(lengths.min()) if len(lengths) else 0,
        max_bins=int(lengths.max()) if len(lengths) else 0,
        n_phones=int(arrays.trials[:, TRIAL_COLUMNS.index("n_phones")].sum()),
    )


def split_entry(
    labelled: bool, sessions: Mapping[str, SessionEntry], skipped: Sequence[SkippedTrial] = ()
) -> SplitEntry:
    return SplitEntry(labelled=labelled, sessions=dict(sessions), skipped=tuple(skipped))


def finish(
    folder: Path,
    days: Sequence[str],
    splits: Mapping[str, SplitEntry],
    spec: FeatureSpec,
    *,
    description: str,
    source: str,
    phonemizer: Mapping | None = None,
    label_check: LabelCheck | None = None,
    imported_from: str | None = None,
) -> Manifest:
    """Write the manifest, the last file of a prepared folder; return it."""
    manifest = Manifest(
        days=tuple(days),
        splits=dict(splits),
        features=spec,
        feature_description=description,
        source=source,
        phonemizer=None if phonemizer is None else PhonemizerInfo(dict(phonemizer)),
        label_check=label_check,
        imported_from=imported_from,
        brain2text_version=__version__,
    )
    write_manifest(folder, manifest)
    return manifest


PREPARED = OutputKind(MANIFEST_FILE, FORMAT, "a prepared dataset")


def staging_dir(out_dir: Path, *, overwrite: bool) -> AbstractContextManager[Path]:
    """A fresh hidden sibling of ``out_dir`` that becomes ``out_dir`` when the block succeeds;
    on any error it is removed and ``out_dir`` is left as it was."""
    return staged_folder(out_dir, PREPARED, overwrite=overwrite)


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and never replace a foreign folder."""
    check_output_folder(out_dir, PREPARED, overwrite=overwrite)
