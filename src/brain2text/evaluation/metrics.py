"""Phoneme error rate and alignments, with edit distances from rapidfuzz (C implementation).

PER is the total edit distance divided by the total number of reference phonemes (the
reference's figure); the mean of per-sentence rates is reported beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

EPS_SYMBOL = "*"  # stands for the missing side of an insertion or deletion


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    return Levenshtein.distance(list(ref), list(hyp))


@dataclass(frozen=True)
class ErrorRate:
    edit_distance: int
    n_reference: int
    n_sentences: int
    mean_sentence_rate: float

    @property
    def rate(self) -> float:
        """Total edits / total reference symbols (NaN with no reference symbols)."""
        return self.edit_distance / self.n_reference if self.n_reference else float("nan")


def error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> ErrorRate:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    distances = [edit_distance(r, h) for r, h in zip(refs, hyps, strict=False)]
    rates = [d / len(r) for d, r in zip(distances, refs, strict=False) if len(r)]
    return ErrorRate(
        edit_distance=sum(distances),
        n_reference=sum(len(r) for r in refs),
        n_sentences=len(refs),
        mean_sentence_rate=sum(rates) / len(rates) if rates else float("nan"),
    )


def rates_by_day(
    refs: Sequence[Sequence], hyps: Sequence[Sequence], day_of: Iterable[int], days: Sequence[str]
) -> dict[str, float]:
    """Day name -> error rate of the sentences of that day (``day_of[i]``: sentence i's day)."""
    rows_of: dict[int, list[int]] = {}
    for row, day in enumerate(day_of):
        rows_of.setdefault(int(day), []).append(row)
    return {
        days[day]: error_rate([refs[r] for r in rows], [hyps[r] for r in rows]).rate
        for day, rows in sorted(rows_of.items())
    }


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str]]:
    """Minimal-edit alignment as (ref, hyp) pairs; EPS_SYMBOL marks insertions/deletions."""
    pairs: list[tuple[str, str]] = []
    for op in Levenshtein.opcodes(list(ref), list(hyp)):
        tag, r0, r1, h0, h1 = op.tag, op.src_start, op.src_end, op.dest_start, op.dest_end
        if tag == "equal" or tag == "replace":
            pairs.extend(zip(ref[r0:r1], hyp[h0:h1], strict=False))
        elif tag == "delete":
            pairs.extend((r, EPS_SYMBOL) for r in ref[r0:r1])
        else:
            pairs.extend((EPS_SYMBOL, h) for h in hyp[h0:h1])
    return pairs


def confusions(pairs_per_sentence: Sequence[Sequence[tuple[str, str]]]) -> Counter:
    """Counts of (ref, hyp) error pairs: substitutions, deletions (hyp '*') and insertions
    (ref '*')."""
    counts: Counter = Counter()
    for pairs in pairs_per_sentence:
        counts.update((r, h) for r, h in pairs if r != h)
    return counts


def format_alignment(pairs: Sequence[tuple[str, str]]) -> str:
    """icefall style: correct symbols as-is, errors as (REF->HYP)."""
    return " ".join(r if r == h else f"({r}->{h})" for r, h in pairs)
