"""Turn a ``competitionData`` folder into a prepared dataset (docs/prepared-format.md).

The standard preparation (FACTS §2): features ``tx1[:, 0:128]`` then ``spikePow[:, 0:128]``,
z-scored per block of each file; text cleaned and phonemised with the CMU dictionary
(``--phonemizer cmu``) or with g2p_en's rules as far as they run offline (``reference``,
``brain2text.g2p``), a user lexicon (``--lexicon``) first in both.
Sessions are streamed one at a time (peak memory is one day) into a hidden sibling folder that
replaces ``out_dir`` only once everything, the manifest last, is written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from brain2text import __version__
from brain2text.atomic import OutputKind, check_output_folder, staged_folder
from brain2text.data.b2t25 import detect_layout
from brain2text.data.dataset import (
    FEATURES_FILE,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    N_FEATURES,
    NORM_FILE,
    PHONEMES_FILE,
    TEXT_FILE,
    TRIAL_COLUMNS,
    TRIALS_FILE,
)
from brain2text.data.matfile import (
    DEFAULT_FIELDS,
    FEATURE_FIELDS,
    RawSession,
    feature_problem,
    read_session,
    trial_problem,
)
from brain2text.errors import ConfigError, DataError
from brain2text.g2p import make_phonemizer
from brain2text.phonemes import CmuPhonemizer, clean_text, has_letters, to_ids

log = logging.getLogger(__name__)

ARRAY_COLUMNS = {"6v": slice(0, 128), "44": slice(128, 256)}  # of tx1..tx4 and spikePow
DEFAULT_FEATURES, DEFAULT_ARRAYS = DEFAULT_FIELDS, ("6v",)  # the standard preparation's
ZSCORE_EPS = 1e-8
FEATURES_DESCRIPTION = "tx1[:, 0:128] + spikePow[:, 0:128], z-scored per block"
NORMALIZATIONS = ("none", "block")


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
    """One name per block of 128 columns, in the prepared order (feature-major)."""
    return [f"{f} of area {a} (128 electrodes)" for f in features for a in arrays]


def describe_features(features: Sequence[str], arrays: Sequence[str], zscored: bool) -> str:
    columns = " + ".join(
        f"{f}[:, {ARRAY_COLUMNS[a].start}:{ARRAY_COLUMNS[a].stop}]"
        for f in features
        for a in arrays
    )
    return columns + (", z-scored per block" if zscored else ", as recorded")


# raw folder -> prepared split; train is required, the others optional; hold-out is unlabelled
RAW_SPLITS = (
    ("train", "train", True),
    ("test", "test", True),
    ("competitionHoldOut", "competition", False),
)


def prepare(
    raw_dir: Path,
    out_dir: Path,
    *,
    skip_bad_trials: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    phonemizer: str = "cmu",
    lexicon: Path | str | None = None,
    normalize: str | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    arrays: Sequence[str] = DEFAULT_ARRAYS,
) -> dict:
    """Prepare ``raw_dir`` into ``out_dir``; return the manifest. ``raw_dir`` holds either
    layout: ``competitionData`` (train/, test/, competitionHoldOut/: prepared here) or
    Brain-to-Text '25 sessions (:mod:`brain2text.data.prepare_b2t25`).

    ``normalize``: ``block`` z-scores each block of each file (the 2023 default), ``none``
    keeps the features as recorded (the B2T'25 default: they ship normalised). ``features``
    (any of tx1..tx4, spikePow) and ``arrays`` (6v, 44) choose the 2023 columns: 128 per
    feature and array, feature-major; the default is the standard tx1 + spikePow of area 6v.

    ``phonemizer`` is ``"cmu"`` or ``"reference"`` (see ``brain2text.g2p``); ``lexicon`` a
    CMU-format file read before the CMU dictionary. A bad trial (NaN/Inf, no bins, lengths
    differing, empty sentence, words missing from lexicon and dictionary in ``cmu`` mode)
    raises a DataError naming the file and trial, unless ``skip_bad_trials``: then it is left
    out, listed in its split's ``skipped`` list and counted in ``n_skipped``; every test or
    hold-out trial left out is also named in a warning.
    """
    from tqdm.auto import tqdm

    raw_dir, out_dir = Path(raw_dir), _absolute(out_dir)
    if detect_layout(raw_dir) == "b2t25":
        from brain2text.data.prepare_b2t25 import (
            prepare_b2t25,  # it builds on this module
        )

        if skip_bad_trials:
            raise ConfigError(
                "--skip-bad-trials: Brain-to-Text '25 files are checked whole; "
                "a bad trial stops the preparation, naming it"
            )
        if (tuple(features), tuple(arrays)) != (DEFAULT_FEATURES, DEFAULT_ARRAYS):
            raise ConfigError(
                "--features/--arrays choose among the 2023 files' columns; "
                "Brain-to-Text '25's 512 features are taken as released"
            )
        return prepare_b2t25(
            raw_dir,
            out_dir,
            overwrite=overwrite,
            progress=progress,
            phonemizer=phonemizer,
            lexicon=lexicon,
            normalize=normalize or "none",
        )
    features, arrays = tuple(features), tuple(arrays)
    check_feature_choice(features, arrays)
    if normalize not in (None, *NORMALIZATIONS):
        raise ConfigError(f"--normalize {normalize}: choose one of {', '.join(NORMALIZATIONS)}")
    zscored = normalize in (None, "block")
    labeller = make_phonemizer(phonemizer, lexicon)  # a bad lexicon fails before any reading
    plan, days = _plan(raw_dir)
    n_files = sum(len(paths) for *_, paths in plan)
    splits: dict[str, dict] = {}
    with (
        staging_dir(out_dir, overwrite=overwrite) as tmp,
        tqdm(total=n_files, desc="prepare", unit="file", disable=not progress) as bar,
    ):
        for folder, split, labelled, paths in plan:
            sessions, skipped = {}, []
            for path in paths:
                bar.set_postfix_str(f"{folder}/{path.name}")
                session = read_session(path, labelled=labelled, check_trials=False, fields=features)
                norm: list = []
                written = _session_arrays(
                    session,
                    f"{folder}/{path.name}",
                    skip_bad_trials,
                    skipped,
                    labeller,
                    zscored,
                    arrays,
                    norm if split == "train" else None,
                )
                write_session(tmp / split / session.name, *written)
                if norm:
                    np.save(tmp / split / session.name / NORM_FILE, np.stack(norm[0]))
                sessions[session.name] = session_entry(
                    f"{folder}/{path.name}", days.index(session.name), *written[:2]
                )
                del session, written  # keep one day in memory, not two
                bar.update()
            splits[split] = split_entry(labelled, sessions, skipped)
        manifest = new_manifest(
            days,
            splits,
            source=str(raw_dir.resolve()),
            features=describe_features(features, arrays, zscored),
            n_features=len(features) * len(arrays) * 128,
            feature_names=feature_names(features, arrays),
            feature_fields=list(features),
            arrays=list(arrays),
            normalization="block" if zscored else "none",
            phonemizer=labeller.describe(),
        )
        write_manifest(tmp, manifest)
    _report_skipped(manifest, out_dir)
    return manifest


def _plan(raw_dir: Path) -> tuple[list[tuple[str, str, bool, list[Path]]], list[str]]:
    """The files to read per split, and the day list; every check that needs no reading."""
    if not raw_dir.is_dir():
        raise DataError(
            f"{raw_dir}: no such folder (expected the competitionData layout: "
            "train/, test/, competitionHoldOut/)"
        )
    plan = []
    for folder, split, labelled in RAW_SPLITS:
        paths = sorted(p for p in (raw_dir / folder).glob("*.mat") if not p.name.startswith("."))
        if folder == "train" and not paths:
            raise DataError(
                f"{raw_dir / folder}: no .mat files (expected the competitionData "
                "layout: train/, test/, competitionHoldOut/, one file per day)"
            )
        if paths:
            plan.append((folder, split, labelled, paths))
    days = [p.stem for p in plan[0][3]]  # sorted by name: the day index
    for *_, paths in plan[1:]:
        for path in paths:
            if path.stem not in days:
                raise DataError(
                    f"{path}: unknown day {path.stem!r}: there is no "
                    f"train/{path.name}, so it has no day index"
                )
    return plan, days


def _session_arrays(
    session: RawSession,
    source: str,
    skip: bool,
    skipped: list[dict],
    labeller: Callable[[str], list[str]] | None = None,
    zscored: bool = True,
    arrays: Sequence[str] = DEFAULT_ARRAYS,
    day_norm: list | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """features (sum T, F) float32, trials (n, 6) int64, phonemes (sum n_phones,) uint8, texts.
    ``day_norm``: receives the (mean, std) over every usable bin of the session (what
    ``brain2text decode --norm train`` normalises a new file of that day with)."""
    usable: list[int] = []  # trials whose features enter the block statistics
    kept: dict[int, tuple[list[int], str]] = {}  # trial -> (phoneme ids, cleaned text)
    for i in range(session.n_trials):
        problem = trial_problem(session, i)
        if feature_problem(session, i) is None:
            usable.append(i)
        ids, text, hint = [], "", "fix the file"
        if problem is None and session.labelled:
            ids, text, problem, hint = _label(session.sentences[i], labeller or CmuPhonemizer())
        if problem is not None:
            if not skip:
                raise DataError(
                    f"{session.where(i)}: {problem}; {hint}, "
                    "or skip such trials with --skip-bad-trials"
                )
            skipped.append({"file": source, "trial": i, "reason": problem})
            continue
        kept[i] = (ids, text)

    feats = {i: trial_features(session, i, arrays) for i in usable}
    stats = block_stats([feats[i] for i in usable], session.block_idx[usable])
    if day_norm is not None and usable:
        day_norm.append(block_stats([feats[i] for i in usable], np.zeros(len(usable)))[0])
    order = list(kept)
    lengths = np.array([len(feats[i]) for i in order], dtype=np.int64)
    width = len(session.features) * len(arrays) * 128
    features = np.empty((int(lengths.sum()), width), dtype=np.float32)  # (sum T, F)
    start = 0
    for i in order:
        features[start : start + len(feats[i])] = (
            zscore(feats[i], *stats[session.block_idx[i]]) if zscored else feats[i]
        )
        start += len(feats[i])
    phone_lengths = np.array([len(kept[i][0]) for i in order], dtype=np.int64)
    trials = (
        np.stack(
            [
                offsets(lengths),
                lengths,
                offsets(phone_lengths),
                phone_lengths,
                session.block_idx[order],
                np.array(order, dtype=np.int64),
            ],
            axis=1,
        )
        .reshape(len(order), len(TRIAL_COLUMNS))
        .astype(np.int64)
    )
    phonemes = np.array([p for i in order for p in kept[i][0]], dtype=np.uint8)
    return features, trials, phonemes, [kept[i][1] for i in order]


def _label(
    sentence: str, labeller: Callable[[str], list[str]]
) -> tuple[list[int], str, str | None, str]:
    """(phoneme ids, cleaned text, problem, what to do about it) of one sentence."""
    text = clean_text(sentence)
    if not has_letters(text):
        return [], text, f"no words left after cleaning the sentence {sentence!r}", "fix the file"
    try:
        ids = to_ids(labeller(text))
    except KeyError as exc:
        words = exc.args[0] if exc.args and isinstance(exc.args[0], list) else [str(exc)]
        where = "the lexicon or " if getattr(labeller, "lexicon", None) is not None else ""
        return (
            [],
            text,
            (f"words not in {where}the CMU dictionary: " + ", ".join(repr(w) for w in words)),
            ("add them to a --lexicon file, let --phonemizer reference guess them"),
        )
    return ids, text, None, ""


# --- maths --------------------------------------------------------------------------------


def trial_features(
    session: RawSession, i: int, arrays: Sequence[str] = DEFAULT_ARRAYS
) -> np.ndarray:
    """Trial ``i`` as (T, F) float64: the 128 columns of each array of each field the session
    read, feature-major (by default tx1 then spikePow of area 6v: the standard 256)."""
    return np.concatenate(
        [matrix[i][:, ARRAY_COLUMNS[a]] for matrix in session.features.values() for a in arrays],
        axis=1,
    ).astype(np.float64, copy=False)


def block_stats(
    trials: Sequence[np.ndarray], blocks: Sequence[int] | np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """block -> (mean, std), each (F,), over all bins of all trials of that block (ddof 0)."""
    blocks = np.asarray(blocks)
    stats = {}
    for block in np.unique(blocks):
        bins = np.concatenate([trials[j] for j in np.flatnonzero(blocks == block)])  # (sum T, F)
        stats[int(block)] = (bins.mean(axis=0), bins.std(axis=0))
    return stats


def zscore_blocks(
    trials: Sequence[np.ndarray], blocks: Sequence[int] | np.ndarray
) -> list[np.ndarray]:
    """Each trial z-scored with the statistics of its block over ``trials`` (float32)."""
    stats = block_stats(trials, blocks)
    return [zscore(x, *stats[int(b)]) for x, b in zip(trials, blocks, strict=False)]


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(T, F) -> (T, F) float32: ``(x - mean) / (std + 1e-8)`` as in the reference."""
    return ((x - mean) / (std + ZSCORE_EPS)).astype(np.float32)


def offsets(lengths: np.ndarray) -> np.ndarray:
    """(n,) lengths -> (n,) start of each item when they are laid end to end."""
    return (
        np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        if len(lengths)
        else (np.zeros(0, np.int64))
    )


# --- writing (shared with pickle_import) ----------------------------------------------------


def write_session(
    folder: Path, features: np.ndarray, trials: np.ndarray, phonemes: np.ndarray, texts: list[str]
) -> None:
    """Write one session's four files (see docs/prepared-format.md)."""
    folder.mkdir(parents=True)
    np.save(folder / FEATURES_FILE, np.ascontiguousarray(features, dtype=np.float32))
    np.save(folder / TRIALS_FILE, trials.astype(np.int64))
    np.save(folder / PHONEMES_FILE, phonemes.astype(np.uint8))
    (folder / TEXT_FILE).write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")


def session_entry(
    source: str, day_index: int | None, features: np.ndarray, trials: np.ndarray
) -> dict:
    lengths = trials[:, TRIAL_COLUMNS.index("n_bins")]
    return {
        "source": source,
        "day_index": day_index,
        "n_trials": len(trials),
        "n_bins": int(features.shape[0]),
        "min_bins": int(lengths.min()) if len(lengths) else 0,
        "max_bins": int(lengths.max()) if len(lengths) else 0,
        "n_phones": int(trials[:, TRIAL_COLUMNS.index("n_phones")].sum()),
    }


def split_entry(labelled: bool, sessions: dict[str, dict], skipped: list[dict]) -> dict:
    return {
        "labelled": labelled,
        "sessions": sessions,
        "n_trials": sum(s["n_trials"] for s in sessions.values()),
        "n_skipped": len(skipped),
        "skipped": skipped,
    }


def new_manifest(
    days: list[str],
    splits: dict[str, dict],
    *,
    source: str,
    features: str,
    n_features: int = N_FEATURES,
    kind: str = "competitionData",
    **extra: object,
) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,  # the layout prepared: competitionData (2023) or b2t25
        "n_features": n_features,
        "feature_dtype": "float32",
        "features": features,
        "trial_columns": list(TRIAL_COLUMNS),
        "days": days,
        "splits": splits,
        "source": source,
        **extra,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "brain2text_version": __version__,
    }


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


PREPARED = OutputKind(MANIFEST_FILE, FORMAT, "a prepared dataset")


def staging_dir(out_dir: Path, *, overwrite: bool):
    """A fresh hidden sibling of ``out_dir`` that becomes ``out_dir`` when the block succeeds;
    on any error it is removed and ``out_dir`` is left as it was."""
    return staged_folder(out_dir, PREPARED, overwrite=overwrite)


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and never replace a foreign folder."""
    check_output_folder(out_dir, PREPARED, overwrite=overwrite)


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(Path(path).absolute()))


def _report_skipped(manifest: dict, out_dir: Path) -> None:
    """One warning per test or hold-out trial left out (they are never dropped silently), then
    one line of counts per split."""
    for name, split in manifest["splits"].items():
        if name == "train":
            continue
        for s in split["skipped"]:
            log.warning(
                "left out %s trial %d of the %s split: %s%s",
                s["file"],
                s["trial"],
                name,
                s["reason"],
                " (a hold-out submission needs every trial)" if name == "competition" else "",
            )
    counts = {name: s["n_skipped"] for name, s in manifest["splits"].items() if s["n_skipped"]}
    if counts:
        first = next(s["skipped"][0] for s in manifest["splits"].values() if s["skipped"])
        log.warning(
            "skipped %d bad trials (%s); listed under 'skipped' in %s; first: %s trial %d: %s",
            sum(counts.values()),
            ", ".join(f"{n} in {k}" for k, n in counts.items()),
            out_dir / MANIFEST_FILE,
            first["file"],
            first["trial"],
            first["reason"],
        )
