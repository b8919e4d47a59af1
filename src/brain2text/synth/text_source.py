"""Sentences from a text file for ``brain2text synth --sentences FILE``.

The grammar of :mod:`brain2text.synth.sentences` writes conversational English from a fixed
vocabulary; a file lets the recordings speak any English instead (held-out natural sentences,
a domain's phrases). Each line is one sentence. A line is kept when, after the transcript
cleaning prepare applies, it has 1 to ``MAX_WORDS`` words and every word has a CMU dictionary
pronunciation (the recordings are simulated from the phonemes); repeated sentences count once.

The kept sentences split into a training side and an evaluation side (test and hold-out) by the
grammar's stable hash (:func:`~brain2text.synth.sentences.is_eval_sentence`: 20% evaluation),
so no evaluation sentence is ever a training one. Each side is shuffled once with the seed, and
day ``k`` of the generated days takes the ``k``-th slice of it: days are disjoint and any one
of them can be regenerated alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import phonemize, words_of

from .sentences import is_eval_sentence

MAX_WORDS = 20  # longer lines are skipped: real trials hold one sentence of up to ~15 words
SHUFFLE_STREAM = 5  # the seed's stream for the sides' order (the day streams use 1-4)


@dataclass(frozen=True)
class SentenceFile:
    """The usable sentences of a file, split into the training and the evaluation side."""

    path: Path
    sha256: str
    train: tuple[str, ...]
    evaluation: tuple[str, ...]
    n_lines: int
    n_skipped: int  # lines without words, too long, unpronounceable or repeated

    def record(self) -> dict[str, object]:
        """What a generated release's manifest says of its sentences."""
        return {
            "path": str(self.path.resolve()),
            "sha256": self.sha256,
            "n_lines": self.n_lines,
            "n_train_side": len(self.train),
            "n_evaluation_side": len(self.evaluation),
            "n_skipped": self.n_skipped,
        }


def pronounceable(text: str) -> bool:
    """Whether every word of ``text`` has a CMU dictionary pronunciation."""
    try:
        phonemize(text)
    except KeyError:
        return False
    return True


def read_sentence_file(path: Path) -> SentenceFile:
    """The sentences of ``path`` (one a line, UTF-8), split by the stable hash."""
    path = Path(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such sentence file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    lines = text.splitlines()
    seen: set[str] = set()
    train: list[str] = []
    evaluation: list[str] = []
    for line in lines:
        sentence = line.strip()
        words = words_of(sentence)
        key = " ".join(words)
        if not words or len(words) > MAX_WORDS or key in seen or not pronounceable(sentence):
            continue
        seen.add(key)
        (evaluation if is_eval_sentence(sentence) else train).append(sentence)
    if not seen:
        raise DataError(
            f"{path}: no usable sentence (one a line, 1-{MAX_WORDS} words, every word in "
            "the CMU dictionary)"
        )
    return SentenceFile(
        path,
        hashlib.sha256(data).hexdigest(),
        tuple(train),
        tuple(evaluation),
        len(lines),
        len(lines) - len(seen),
    )


def check_enough(source: SentenceFile, days: int, n_train: int, n_evaluation: int) -> None:
    """One-line ConfigError when the file has too few sentences for the request (``n_*``: per
    day)."""
    for side, have, per_day in (
        ("training", source.train, n_train),
        ("evaluation (test and hold-out)", source.evaluation, n_evaluation),
    ):
        if days * per_day > len(have):
            raise ConfigError(
                f"{source.path}: {len(have)} {side}-side sentences, {days} days x {per_day} "
                f"need {days * per_day}; give more sentences or fewer trials a day"
            )


def day_sentences(
    source: SentenceFile, seed: int, slot: int, n: int, evaluation: bool
) -> list[str]:
    """The ``n`` sentences of day ``slot`` (0 for the first generated day) on one side."""
    side = source.evaluation if evaluation else source.train
    order = np.random.default_rng([seed, SHUFFLE_STREAM, int(evaluation)]).permutation(len(side))
    return [side[int(i)] for i in order[slot * n : (slot + 1) * n]]
