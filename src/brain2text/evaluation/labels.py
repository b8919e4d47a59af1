"""What decoded trials are scored against: always the dataset's own labels.

A prepared split's labels are its phoneme ids (for Brain-to-Text '25 data the released
``seq_class_ids``); hold-out answers (a JSON file mapping session name to its sentences in trial
order, as ``brain2text synth`` writes) and the sentences of a raw recording are labelled with the
phonemiser (and user lexicon) the prepared folder was made with, and a Brain-to-Text '25 file's
labelled trials with its released ids, so ``evaluate`` and ``decode`` score a trial alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text.data.b2t25 import SPLIT_FILES, read_b2t25_file
from brain2text.data.dataset import PreparedDataset, PreparedSplit
from brain2text.data.manifest import Manifest, read_manifest
from brain2text.errors import DataError
from brain2text.g2p import make_phonemizer
from brain2text.phonemes import clean_text, to_ids

Labeller = Callable[[str], list[str]]


@dataclass(frozen=True)
class References:
    """Per trial: the reference sentence (None for a split without text) and phoneme ids."""

    texts: list[str] | None
    ids: list[list[int]]


def dataset_kind(data: PreparedDataset) -> str:
    """What the prepared folder was made from: "competitionData" (2023) or "b2t25"."""
    return data.manifest.kind


def dataset_labeller(data: PreparedDataset) -> Labeller:
    """The phonemiser (and user lexicon) the prepared folder's labels were made with."""
    return manifest_labeller(data.manifest, data.path)


def manifest_labeller(manifest: Manifest, where: Path) -> Labeller:
    """The phonemiser (and user lexicon) a manifest records (CMU for imported labels, as they
    were made)."""
    info = manifest.phonemizer
    name, lexicon = (info.name, info.lexicon_path) if info is not None else ("cmu", None)
    if lexicon is not None and not Path(lexicon).is_file():
        raise DataError(
            f"{where}: its labels used the lexicon {lexicon}, which is gone; "
            "other sentences cannot be labelled the same way"
        )
    return make_phonemizer(name, lexicon)


def folder_labeller(prepared: Path) -> Labeller:
    """The labeller of the prepared folder at ``prepared`` (its manifest alone is read)."""
    return manifest_labeller(read_manifest(Path(prepared)), Path(prepared))


def label_sentence(labeller: Labeller, sentence: str, where: str) -> list[int]:
    """Phoneme ids of a sentence, labelled as the dataset was."""
    try:
        return to_ids(labeller(clean_text(sentence)))
    except KeyError as exc:
        words = exc.args[0] if exc.args and isinstance(exc.args[0], list) else [str(exc)]
        raise DataError(
            f"{where}: words the dataset's phonemizer cannot pronounce: {', '.join(words)}"
        ) from None


def answer_sentences(split: PreparedSplit, answers: Path, indices: np.ndarray) -> list[str]:
    """The sentences of trials ``indices`` from an answers file (session -> sentences in trial
    order, as ``brain2text synth`` writes ``holdout_answers.json``)."""
    try:
        table = json.loads(Path(answers).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{answers}: cannot read answers ({exc})") from None
    sentences = []
    for i in map(int, indices):
        session, trial = split.session_of(i), int(split.trial[i])
        try:
            sentences.append(str(table[session][trial]))
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{answers}: no answer for {split.describe(i)}") from None
    return sentences


def split_references(
    data: PreparedDataset, split: PreparedSplit, indices: np.ndarray, answers: Path | None
) -> References | None:
    """The references of trials ``indices``: the split's own labels, or the answers file's
    sentences labelled as the dataset was; None for an unlabelled split without answers."""
    if split.labelled:
        return References(
            [split.text(int(i)) for i in indices],
            [split.phonemes(int(i)).tolist() for i in indices],
        )
    if answers is None:
        return None
    texts = answer_sentences(split, answers, indices)
    labeller = dataset_labeller(data)
    ids = [
        label_sentence(labeller, s, f"{answers}: {split.describe(int(i))}")
        for i, s in zip(indices, texts, strict=True)
    ]
    return References(texts, ids)


def recording_references(
    sources: Sequence[tuple[str, int, str]], labeller_of_run: Callable[[], Labeller | None]
) -> list[list[int] | None]:
    """Per raw trial ``(file, trial index in it, sentence)``: the phoneme ids it is scored
    against (None without a sentence, without a labeller for it, or with a word the labeller
    cannot pronounce). A Brain-to-Text '25 split file's trials keep their released ids; other
    sentences go through the dataset's phonemiser (``labeller_of_run()``, asked once, when a
    sentence needs it)."""
    released: dict[str, list[np.ndarray] | None] = {}
    labellers: list[Labeller | None] = []
    by_name = {name: split for split, name in SPLIT_FILES.items()}
    out: list[list[int] | None] = []
    for source, trial, sentence in sources:
        if not sentence:
            out.append(None)
            continue
        name = Path(source).name
        if name in by_name:
            if source not in released:
                released[source] = read_b2t25_file(Path(source), by_name[name]).phoneme_ids
            ids = released[source]
            out.append(None if ids is None else [int(k) for k in ids[trial]])
            continue
        if not labellers:
            labellers.append(labeller_of_run())
        labeller = labellers[0]
        if labeller is None:
            out.append(None)
            continue
        try:
            out.append(label_sentence(labeller, sentence, f"{source} trial {trial}"))
        except DataError:  # a word the dataset's phonemiser cannot pronounce: not scored
            out.append(None)
    return out
