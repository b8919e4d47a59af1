"""A split's word figures from its evaluation folders: greedy PER, the n-gram's WER, the
LLM-rescored WER and the n-best oracle's, each with its 95% bootstrap interval.

The words folder (``eval/<split>-lm/``) of an evaluation with an LLM keeps each trial's n-best
list with the first-pass scores: the n-gram's own sentence is the entry of best first-pass
``score``, the LLM's the row's ``hyp``, and the oracle the entry closest to the reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from brain2text.evaluation.metrics import edit_distance
from brain2text.evaluation.words import (
    RateWithInterval,
    bootstrap_interval,
    normalize_words,
    rate_with_interval,
)


@dataclass(frozen=True)
class WordFigures:
    """One split's figures with their 95% intervals: greedy PER, the n-gram's WER, and with an
    LLM the rescored WER and the n-best oracle's (the best any choice from the lists reaches)."""

    greedy_per: RateWithInterval
    ngram_wer: RateWithInterval
    llm_wer: RateWithInterval | None = None
    oracle_wer: RateWithInterval | None = None


def read_rows(folder: Path) -> list[dict]:
    """The rows of ``folder/hypotheses.jsonl`` (none when the folder has no such file)."""
    path = folder / "hypotheses.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def first_pass_sentence(row: dict) -> str:
    """The n-gram's own sentence of a words row: its n-best entry of best first-pass score."""
    nbest = row.get("nbest") or []
    return max(nbest, key=lambda h: h["score"])["text"] if nbest else row["hyp"]


def word_figures(greedy_dir: Path, words_dir: Path, llm: bool) -> WordFigures | None:
    """The figures of a split from its greedy and words folders (None: unlabelled)."""
    greedy = [r for r in read_rows(greedy_dir) if "ref" in r]
    words = read_rows(words_dir)
    if not greedy or not words or any("text" not in r for r in words):
        return None
    edits = [int(r["edit_distance"]) for r in greedy]
    lengths = [len(r["ref"].split()) for r in greedy]
    total = sum(lengths)
    per = RateWithInterval(
        sum(edits) / total if total else float("nan"),
        bootstrap_interval(edits, lengths),
        sum(edits),
        total,
    )
    refs = [normalize_words(r["text"]) for r in words]
    ngram = rate_with_interval(refs, [normalize_words(first_pass_sentence(r)) for r in words])
    if not llm:
        return WordFigures(per, ngram)
    rescored = rate_with_interval(refs, [normalize_words(r["hyp"]) for r in words])
    best = []
    for ref, row in zip(refs, words, strict=True):
        options = [normalize_words(h["text"]) for h in row.get("nbest") or []] or [[]]
        distances = [edit_distance(ref, h) for h in options]
        best.append(options[distances.index(min(distances))])
    return WordFigures(per, ngram, rescored, rate_with_interval(refs, best))


def _rate(rate: RateWithInterval) -> str:
    return f"{rate.rate:.3f} (95% CI {rate.interval.low:.3f}-{rate.interval.high:.3f})"


def print_figures(name: str, figures: WordFigures, n_sentences: int) -> None:
    """greedy PER, n-gram WER, + LLM WER and the n-best oracle, each with its interval."""
    print(f"{name + ' greedy PER':<21}{_rate(figures.greedy_per)} over {n_sentences} sentences")
    print(f"{name + ' n-gram WER':<21}{_rate(figures.ngram_wer)}")
    if figures.llm_wer is not None and figures.oracle_wer is not None:
        print(f"{name + ' + LLM WER':<21}{_rate(figures.llm_wer)}")
        oracle = _rate(figures.oracle_wer)
        print(f"{name + ' oracle WER':<21}{oracle} (the n-best's best: no rescoring beats it)")
