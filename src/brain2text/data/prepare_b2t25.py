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
from pathlib import Path

import numpy as np

from brain2text.data.b2t25 import (
    N_FEATURES_B2T25,
    B2T25File,
    b2t25_sessions,
    read_b2t25_file,
)
from brain2text.data.dataset import TRIAL_COLUMNS
from brain2text.data.prepare import (
    NORMALIZATIONS,
    new_manifest,
    offsets,
    session_entry,
    split_entry,
    staging_dir,
    write_manifest,
    write_session,
    zscore_blocks,
)
from brain2text.errors import ConfigError, DataError
from brain2text.g2p import make_phonemizer
from brain2text.phonemes import PHONEMES, clean_text, has_letters, to_ids

SPLITS = (("train", True), ("val", True), ("test", False))  # B2T'25 split, labelled
MAX_LISTED = 200  # label mismatches listed in the manifest (all are counted)
FEATURE_NAMES = [
    "tx (threshold crossings, -4.5 RMS) x 256 electrodes: ventral 6v, area 4, "
    "55b, dorsal 6v (64 each)",
    "spike-band power x the same 256 electrodes",
]


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


def session_arrays(
    raw: B2T25File,
    labeller: Callable[[str], list[str]],
    normalize: str,
    mismatches: list[dict],
    counts: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """features (sum T, 512) float32, trials (n, 6) int64, phonemes (sum n_phones,) uint8 and
    the cleaned sentences of one file; label checks go to ``mismatches`` and ``counts``."""
    feats = raw.features
    if normalize == "block":
        feats = zscore_blocks(feats, raw.block_num)
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    features = (
        np.concatenate(feats).astype(np.float32)
        if feats
        else np.empty((0, N_FEATURES_B2T25), np.float32)
    )
    ids = raw.phoneme_ids if raw.phoneme_ids is not None else [np.empty(0, np.int64)] * len(feats)
    texts = [clean_text(s) for s in raw.sentences] if raw.labelled else [""] * len(feats)
    if raw.labelled:
        for i, (given, text) in enumerate(zip(ids, texts, strict=False)):
            counts["checked"] += 1
            ours = _our_ids(text, labeller)
            if ours is None or not np.array_equal(ours, given):
                counts["mismatched"] += 1
                if len(mismatches) < MAX_LISTED:
                    mismatches.append(
                        {
                            "file": str(raw.path),
                            "trial": i,
                            "group": raw.groups[i],
                            "sentence": raw.sentences[i],
                            "released": " ".join(PHONEMES[k - 1] for k in given),
                            "ours": "(cannot phonemise)"
                            if ours is None
                            else " ".join(PHONEMES[k - 1] for k in ours),
                        }
                    )
    phone_lengths = np.array([len(p) for p in ids], dtype=np.int64)
    trials = np.stack(
        [
            offsets(lengths),
            lengths,
            offsets(phone_lengths),
            phone_lengths,
            raw.block_num.astype(np.int64),
            np.arange(len(feats), dtype=np.int64),
        ],
        axis=1,
    ).reshape(len(feats), len(TRIAL_COLUMNS))
    phonemes = np.concatenate(ids).astype(np.uint8) if len(ids) else np.empty(0, np.uint8)
    return features, trials.astype(np.int64), phonemes, texts


def _our_ids(text: str, labeller: Callable[[str], list[str]]) -> np.ndarray | None:
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
    overwrite: bool = False,
    progress: bool = True,
    phonemizer: str = "cmu",
    lexicon: Path | str | None = None,
    normalize: str = "none",
) -> dict:
    """Prepare a B2T'25 release into ``out_dir``; returns the manifest."""
    from tqdm.auto import tqdm

    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"--normalize {normalize}: choose one of {', '.join(NORMALIZATIONS)}")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir).absolute()
    labeller = make_phonemizer(phonemizer, lexicon)
    plan, days = plan_b2t25(raw_dir)
    mismatches: list[dict] = []
    counts = {"checked": 0, "mismatched": 0}
    sessions: dict[str, dict[str, dict]] = {split: {} for split, _ in SPLITS}
    with (
        staging_dir(out_dir, overwrite=overwrite) as tmp,
        tqdm(total=len(plan), desc="prepare", unit="file", disable=not progress) as bar,
    ):
        for split, name, path in plan:
            bar.set_postfix_str(f"{name}/{path.name}")
            raw = read_b2t25_file(path, split)
            arrays = session_arrays(raw, labeller, normalize, mismatches, counts)
            write_session(tmp / split / name, *arrays)
            sessions[split][name] = session_entry(
                f"{name}/{path.name}", days.index(name), *arrays[:2]
            )
            del raw, arrays  # one file in memory at a time
            bar.update()
        splits = {
            split: split_entry(labelled, sessions[split], [])
            for split, labelled in SPLITS
            if sessions[split]
        }
        manifest = new_manifest(
            days,
            splits,
            source=str(raw_dir.resolve()),
            n_features=N_FEATURES_B2T25,
            features=(
                "input_features as released (0-255 threshold crossings, 256-511 "
                "spike-band power)"
                + (", z-scored per block" if normalize == "block" else ", not re-normalised")
            ),
            kind="b2t25",
            feature_names=FEATURE_NAMES,
            normalization=normalize,
            feature_fields=["input_features"],
            arrays=["ventral 6v", "area 4", "55b", "dorsal 6v"],
            phonemizer=labeller.describe(),
            label_check={
                "n_checked": counts["checked"],
                "n_mismatched": counts["mismatched"],
                "listed": mismatches,
                "what": "released seq_class_ids[:seq_len] against this project's "
                "phonemisation of sentence_label; the released ids are kept",
            },
        )
        write_manifest(tmp, manifest)
    return manifest
