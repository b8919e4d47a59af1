"""Word error rate with confidence intervals.

WER is the total word edit distance divided by the total number of reference words, after the
competition's normalisation (:func:`normalize_words`: lower case, every character but letters,
``'`` and ``-`` removed, ``--`` dropped, the same cleaning as the transcripts). Edit distances
come from rapidfuzz on word lists (:mod:`brain2text.evaluation.metrics`).

Confidence intervals are percentile bootstraps over sentences: sentences are drawn with
replacement ``n_resamples`` times and the ratio of summed edits to summed reference lengths is
recomputed for each draw, so long sentences weigh as they do in the figure itself. A change of
decoding on the same sentences (:func:`paired_change`) is bootstrapped paired: each draw takes
the same sentences for both decodings, so the interval is that of the change itself, much
narrower than the two rates' own intervals, which share most of their spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brain2text.evaluation.metrics import edit_distance
from brain2text.phonemes import clean_text

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


def normalize_words(text: str) -> list[str]:
    """The words a sentence is scored on."""
    return clean_text(text).split()


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [self.low, self.high]


def bootstrap_interval(
    edits: Sequence[float],
    lengths: Sequence[float],
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``sum(edits) / sum(lengths)`` over sentences (NaN
    bounds with no sentence or no reference word); ``edits`` may be signed differences."""
    edits_a = np.asarray(edits, dtype=np.float64)
    lengths_a = np.asarray(lengths, dtype=np.float64)
    if len(edits_a) == 0 or lengths_a.sum() == 0:
        return Interval(float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(edits_a), size=(n_resamples, len(edits_a)))
    totals = lengths_a[draws].sum(axis=1)
    rates = np.divide(
        edits_a[draws].sum(axis=1), totals, out=np.full(n_resamples, np.nan), where=totals > 0
    )
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(rates, [tail, 100.0 - tail])
    return Interval(float(low), float(high))


@dataclass(frozen=True)
class RateWithInterval:
    rate: float  # total edits / total reference units
    interval: Interval
    edits: int
    n_reference: int

    def to_dict(self, name: str) -> dict:
        return {
            name: self.rate,
            f"{name}_ci95": self.interval.to_list(),
            f"{name}_edits": self.edits,
            f"{name}_reference": self.n_reference,
        }


def rate_with_interval(
    refs: Sequence[Sequence], hyps: Sequence[Sequence], seed: int = 0
) -> RateWithInterval:
    """Error rate of ``hyps`` against ``refs`` (symbols or words) and its bootstrap interval."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    edits = [edit_distance(r, h) for r, h in zip(refs, hyps, strict=False)]
    lengths = [len(r) for r in refs]
    total = sum(lengths)
    return RateWithInterval(
        sum(edits) / total if total else float("nan"),
        bootstrap_interval(edits, lengths, seed=seed),
        sum(edits),
        total,
    )


@dataclass(frozen=True)
class RateChange:
    """``rate(after) - rate(before)`` on the same sentences (negative: fewer errors) with its
    paired bootstrap interval."""

    change: float
    interval: Interval
    before: float
    after: float

    @property
    def relative(self) -> float:
        """The change as a fraction of the rate before (NaN when that is 0)."""
        return self.change / self.before if self.before else float("nan")


def paired_change(
    refs: Sequence[Sequence],
    before: Sequence[Sequence],
    after: Sequence[Sequence],
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> RateChange:
    """How much ``after`` changes the error rate of ``before`` on the same references, with a
    percentile interval from drawing the sentences once per resample for both."""
    if not len(refs) == len(before) == len(after):
        raise ValueError(f"{len(refs)} references, {len(before)} and {len(after)} hypotheses")
    lengths = np.asarray([len(r) for r in refs], dtype=np.float64)
    pairs = zip(refs, before, after, strict=True)
    edits = np.asarray([(edit_distance(r, b), edit_distance(r, a)) for r, b, a in pairs])
    edits_before, edits_after = edits.reshape(-1, 2).T.astype(np.float64)
    total = lengths.sum()
    if len(lengths) == 0 or total == 0:
        nan = float("nan")
        return RateChange(nan, Interval(nan, nan), nan, nan)
    diff = edits_after - edits_before
    interval = bootstrap_interval(diff.tolist(), lengths.tolist(), n_resamples, level, seed)
    return RateChange(
        float(diff.sum() / total),
        interval,
        float(edits_before.sum() / total),
        float(edits_after.sum() / total),
    )
