"""Prepare a ``competitionData`` folder (the 2023 release: ``train/``, ``test/``,
``competitionHoldOut/``, one ``.mat`` file per day) into the prepared format.

The standard preparation (FACTS §2): features ``tx1[:, 0:128]`` then ``spikePow[:, 0:128]``,
z-scored per block of each file (:mod:`brain2text.data.features`); text cleaned and phonemised
by the phonemiser given. Sessions are streamed one at a time (peak memory is one day) into a
hidden sibling folder that replaces ``out_dir`` only once everything, the manifest last, is
written (:mod:`brain2text.data.writer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text.data.feature_spec import DayNorm
from brain2text.data.features import (
    day_stats,
    describe_features,
    n_features_2023,
    normalized,
    pack,
    spec_2023,
    trial_features,
)
from brain2text.data.manifest import Manifest, SkippedTrial, SplitEntry
from brain2text.data.matfile import RawSession, feature_problem, read_session, trial_problem
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
from brain2text.phonemes import CmuPhonemizer, clean_text, has_letters, to_ids

# raw folder -> prepared split; train is required, the others optional; hold-out is unlabelled
RAW_SPLITS = (
    ("train", "train", True),
    ("test", "test", True),
    ("competitionHoldOut", "competition", False),
)

Labeller = Callable[[str], list[str]]
Phonemizer = CmuPhonemizer | ReferencePhonemizer


@dataclass(frozen=True, eq=False)
class PreparedSession:
    """One day as prepared: its arrays, the trials left out, and (if asked) its statistics."""

    arrays: SessionArrays
    skipped: list[SkippedTrial]
    day_norm: DayNorm | None  # over every usable bin; None when not asked for or none usable


def prepare_2023(
    raw_dir: Path,
    out_dir: Path,
    *,
    labeller: Phonemizer,
    skip_bad_trials: bool,
    overwrite: bool,
    progress: bool,
    normalization: str,
    features: Sequence[str],
    arrays: Sequence[str],
) -> Manifest:
    """Prepare ``raw_dir`` (options checked by :func:`brain2text.data.prepare.prepare`);
    ``labeller`` phonemises the sentences."""
    from tqdm.auto import tqdm

    plan, days = plan_2023(raw_dir)
    n_files = sum(len(paths) for *_, paths in plan)
    splits: dict[str, SplitEntry] = {}
    with (
        staging_dir(out_dir, overwrite=overwrite) as tmp,
        tqdm(total=n_files, desc="prepare", unit="file", disable=not progress) as bar,
    ):
        for folder, split, labelled, paths in plan:
            sessions, skipped = {}, []
            for path in paths:
                source = f"{folder}/{path.name}"
                bar.set_postfix_str(source)
                raw = read_session(
                    path, labelled=labelled, check_trials=False, fields=tuple(features)
                )
                done = prepare_session(
                    raw,
                    source,
                    skip=skip_bad_trials,
                    labeller=labeller,
                    normalization=normalization,
                    arrays=arrays,
                    with_day_norm=split == "train",
                )
                del raw  # keep one day in memory, not two
                sessions[path.stem] = write_session(
                    tmp / split / path.stem,
                    done.arrays,
                    source,
                    days.index(path.stem),
                    done.day_norm,
                )
                skipped += done.skipped
                del done
                bar.update()
            splits[split] = split_entry(labelled, sessions, skipped)
        return finish(
            tmp,
            days,
            splits,
            spec_2023(features, arrays, normalization),
            description=describe_features(features, arrays, normalization == "block"),
            source=str(raw_dir.resolve()),
            phonemizer=labeller.describe(),  # with the counts of the words it labelled
        )


def plan_2023(raw_dir: Path) -> tuple[list[tuple[str, str, bool, list[Path]]], list[str]]:
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


def prepare_session(
    session: RawSession,
    source: str,
    *,
    skip: bool = False,
    labeller: Labeller | None = None,
    normalization: str = "block",
    arrays: Sequence[str] = ("6v",),
    with_day_norm: bool = False,
) -> PreparedSession:
    """One day's trials as prepared. A trial with unusable features never enters the block
    statistics; one left out only for its text does (as in the reference). A bad trial raises
    a DataError naming it, unless ``skip``: then it is left out and listed."""
    usable: list[int] = []  # trials whose features enter the block statistics
    kept: dict[int, tuple[list[int], str]] = {}  # trial -> (phoneme ids, cleaned text)
    skipped: list[SkippedTrial] = []
    for i in range(session.n_trials):
        problem = trial_problem(session, i)
        if feature_problem(session, i) is None:
            usable.append(i)
        ids: list[int] = []
        text, hint = "", "fix the file"
        if problem is None and session.labelled:
            ids, text, problem, hint = _label(session.sentences[i], labeller or CmuPhonemizer())
        if problem is not None:
            if not skip:
                raise DataError(
                    f"{session.where(i)}: {problem}; {hint}, "
                    "or skip such trials with --skip-bad-trials"
                )
            skipped.append(SkippedTrial(source, i, problem))
            continue
        kept[i] = (ids, text)

    feats = [trial_features(session, i, arrays) for i in usable]  # (T_i, F) float64
    order = list(kept)  # a subset of usable, in file order
    lengths = np.array([len(x) for i, x in zip(usable, feats, strict=True) if i in kept], np.int64)
    as_prepared = normalized(feats, session.block_idx[usable], normalization)
    rows = (x for i, x in zip(usable, as_prepared, strict=True) if i in kept)
    features = pack(rows, int(lengths.sum()), n_features_2023(list(session.features), arrays))
    phone_lengths = np.array([len(kept[i][0]) for i in order], dtype=np.int64)
    trials = trial_table(
        lengths, phone_lengths, session.block_idx[order], np.array(order, dtype=np.int64)
    )
    phonemes = np.array([p for i in order for p in kept[i][0]], dtype=np.uint8)
    return PreparedSession(
        SessionArrays(features, trials, phonemes, [kept[i][1] for i in order]),
        skipped,
        day_stats(feats) if with_day_norm and usable else None,
    )


def _label(sentence: str, labeller: Labeller) -> tuple[list[int], str, str | None, str]:
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
