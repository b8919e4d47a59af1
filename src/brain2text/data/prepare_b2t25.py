"""Prepare a Brain-to-Text '25 release (``hdf5_data_final/t15.*/data_{train,val,test}.hdf5``)
into the same prepared format as the 2023 data (docs/prepared-format.md).

- Features: the 512 columns as released (0-255 threshold crossings, 256-511 spike-band power),
  float32, not re-normalised (the release ships them normalised; the official loader applies
  nothing); ``normalize="block"`` z-scores each block of each file as the 2023 preparation does.
- Labels: ``seq_class_ids[:seq_len]`` as released. Each is checked against this project's own
  phonemisation of ``sentence_label``; a mismatch is counted and listed in the manifest
  (``label_check``), never changed.
- Splits: train, val and test keep their names; test is unlabelled. The day index is the sorted
  list of sessions with a train file; a val or test file of a session without one is an error.

Sessions are streamed one file at a time into a hidden sibling folder that replaces ``out_dir``
only once everything, the manifest last, is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text.data.b2t25 import (
    N_FEATURES_B2T25,
    B2T25File,
    b2t25_sessions,
    read_b2t25_file,
)
from brain2text.data.features import normalized, pack, spec_b2t25
from brain2text.data.manifest import LabelCheck, LabelMismatch, Manifest, SessionEntry
from brain2text.data.writer import (
    SessionArrays,
    finish,
    split_entry,
    staging_dir,
    trial_table,
    write_session,
)
from brain2text.errors import DataError
from brain2text.g2p import ReferencePhonemizer
from brain2text.phonemes import PHONEMES, CmuPhonemizer, clean_text, has_letters, to_ids

SPLITS = (("train", True), ("val", True), ("test", False))  # B2T'25 split, labelled
MAX_LISTED = 200  # label mismatches listed in the manifest (all are counted)
LABEL_CHECK_WHAT = (
    "released seq_class_ids[:seq_len] against this project's phonemisation of "
    "sentence_label; the released ids are kept"
)

Labeller = Callable[[str], list[str]]
Phonemizer = CmuPhonemizer | ReferencePhonemizer


@dataclass(frozen=True, eq=False)
class PreparedFile:
    """One split file as prepared, and its labels checked against this project's."""

    arrays: SessionArrays
    n_checked: int
    mismatches: list[LabelMismatch]


def plan_b2t25(raw_dir: Path) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """(split, session, file) in the order they are prepared, and the day list."""
    sessions = b2t25_sessions(raw_dir)
    days = sorted(name for name, files in sessions if "train" in files)
    if not days:
        raise DataError(
            f"{raw_dir}: no session has a data_train.hdf5, so no day has an input layer to train"
        )
    plan = []
    for split, _ in SPLITS:
        for name, files in sessions:
            if split in files:
                if name not in days:
                    raise DataError(
                        f"{files[split]}: session {name} has no data_train.hdf5, "
                        "so it has no day index"
                    )
                plan.append((split, name, files[split]))
    return plan, days


def prepare_file(raw: B2T25File, labeller: Labeller, normalization: str) -> PreparedFile:
    """features (sum T, 512) float32, trials (n, 6) int64, phonemes (sum n_phones,) uint8 and
    the cleaned sentences of one file, with its released labels checked."""
    lengths = np.array([len(f) for f in raw.features], dtype=np.int64)
    rows = normalized(raw.features, raw.block_num, normalization)
    features = pack(rows, int(lengths.sum()), N_FEATURES_B2T25)
    n = raw.n_trials
    ids = raw.phoneme_ids if raw.phoneme_ids is not None else [np.empty(0, np.int64)] * n
    texts = [clean_text(s) for s in raw.sentences] if raw.labelled else [""] * n
    mismatches = []
    if raw.labelled:
        for i, (given, text) in enumerate(zip(ids, texts, strict=True)):
            ours = _our_ids(text, labeller)
            if ours is None or not np.array_equal(ours, given):
                mismatches.append(
                    LabelMismatch(
                        file=str(raw.path),
                        trial=i,
                        group=raw.groups[i],
                        sentence=raw.sentences[i],
                        released=" ".join(PHONEMES[k - 1] for k in given),
                        ours="(cannot phonemise)"
                        if ours is None
                        else " ".join(PHONEMES[k - 1] for k in ours),
                    )
                )
    phone_lengths = np.array([len(p) for p in ids], dtype=np.int64)
    trials = trial_table(lengths, phone_lengths, raw.block_num, np.arange(n, dtype=np.int64))
    phonemes = np.concatenate(ids).astype(np.uint8) if len(ids) else np.empty(0, np.uint8)
    return PreparedFile(
        SessionArrays(features, trials, phonemes, texts), n if raw.labelled else 0, mismatches
    )


def _our_ids(text: str, labeller: Labeller) -> np.ndarray | None:
    if not has_letters(text):
        return None
    try:
        return np.array(to_ids(labeller(text)), dtype=np.int64)
    except KeyError:
        return None


def prepare_b2t25(
    raw_dir: Path,
    out_dir: Path,
    *,
    labeller: Phonemizer,
    overwrite: bool,
    progress: bool,
    normalization: str,
) -> Manifest:
    """Prepare a B2T'25 release (options checked by :func:`brain2text.data.prepare.prepare`);
    ``labeller`` phonemises the sentences."""
    from tqdm.auto import tqdm

    plan, days = plan_b2t25(raw_dir)
    n_checked, mismatches = 0, []
    sessions: dict[str, dict[str, SessionEntry]] = {split: {} for split, _ in SPLITS}
    with (
        staging_dir(out_dir, overwrite=overwrite) as tmp,
        tqdm(total=len(plan), desc="prepare", unit="file", disable=not progress) as bar,
    ):
        for split, name, path in plan:
            bar.set_postfix_str(f"{name}/{path.name}")
            done = prepare_file(read_b2t25_file(path, split), labeller, normalization)
            sessions[split][name] = write_session(
                tmp / split / name, done.arrays, f"{name}/{path.name}", days.index(name)
            )
            n_checked += done.n_checked
            mismatches += done.mismatches
            del done  # one file in memory at a time
            bar.update()
        splits = {
            split: split_entry(labelled, sessions[split])
            for split, labelled in SPLITS
            if sessions[split]
        }
        return finish(
            tmp,
            days,
            splits,
            spec_b2t25(normalization, N_FEATURES_B2T25),
            description=(
                "input_features as released (0-255 threshold crossings, 256-511 "
                "spike-band power)"
                + (", z-scored per block" if normalization == "block" else ", not re-normalised")
            ),
            source=str(raw_dir.resolve()),
            phonemizer=labeller.describe(),  # with the counts of the words it labelled
            label_check=LabelCheck(
                n_checked=n_checked,
                n_mismatched=len(mismatches),
                listed=tuple(mismatches[:MAX_LISTED]),
                what=LABEL_CHECK_WHAT,
            ),
        )
