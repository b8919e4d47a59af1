"""n-best rescoring with a neural LM: the official baselines' formula.

Every hypothesis of a trial's n-best list gets

    total = acoustic_scale * am + (1 - alpha) * ngram + alpha * llm

in natural-log units: ``am`` the first pass's acoustic score (the emissions along its best
path), ``ngram`` the n-gram LM's sentence log-probability (``</s>`` included), ``llm`` the
neural LM's sum of token log-probabilities given the start token (no end term, no length
penalty; :class:`~brain2text.decoding.llm.SentenceScorer`). The best total wins. The
speechBCI baseline uses alpha 0.5, acoustic_scale 0.5 (the defaults here); nejm-brain-to-text
alpha 0.55, acoustic_scale 0.325.

An optional gate keeps the LLM out of trials whose best first-pass sentence has an n-gram
score per word below ``gate`` (sentences the n-gram finds improbable, such as the random word
lists of the Brain-to-Text '25 test set, where an LLM's preference for fluent English misleads):
those trials are ranked by ``acoustic_scale * am + ngram``.

Scores stay on the hypothesis objects (``WordHypothesis.llm`` / ``.total``), never in arrays
parallel to a filtered list, so an empty hypothesis cannot shift later scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from brain2text.decoding.beam import WordHypothesis
from brain2text.errors import ConfigError
from brain2text.evaluation.metrics import edit_distance
from brain2text.evaluation.words import normalize_words

if TYPE_CHECKING:
    from brain2text.decoding.llm import SentenceScorer

DEFAULT_ALPHA = 0.5
DEFAULT_ACOUSTIC_SCALE = 0.5
DEFAULT_LLM_NBEST = 100  # the baselines' n-best size for LLM rescoring


@dataclass(frozen=True)
class RescoreOptions:
    """``alpha``: the LLM's share of the LM score (0: n-gram only, 1: LLM only);
    ``acoustic_scale``: multiplies the acoustic score; ``gate``: n-gram natural-log score per
    word below which a trial is ranked without the LLM (None: never)."""

    alpha: float = DEFAULT_ALPHA
    acoustic_scale: float = DEFAULT_ACOUSTIC_SCALE
    gate: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, int | float) and 0.0 <= self.alpha <= 1.0):
            raise ConfigError(f"--alpha {self.alpha}: must be between 0 and 1")
        if not (
            isinstance(self.acoustic_scale, int | float)
            and math.isfinite(self.acoustic_scale)
            and self.acoustic_scale >= 0
        ):
            raise ConfigError(f"--acoustic-scale {self.acoustic_scale}: must be a number >= 0")
        if self.gate is not None and not (
            isinstance(self.gate, int | float) and math.isfinite(self.gate)
        ):
            raise ConfigError(f"--llm-gate {self.gate}: must be a finite number (ln per word)")


def is_gated(first_ngram: float, first_n_words: int, gate: float | None) -> bool:
    """Whether the gate keeps the LLM out of a trial whose best first-pass sentence has
    ``first_ngram`` (ln) over ``first_n_words`` words."""
    return gate is not None and first_ngram / max(first_n_words, 1) < gate


def rescore_totals(am, ngram, llm, n_words, options: RescoreOptions) -> np.ndarray:
    """The totals of one trial's hypotheses, given in first-pass order (index 0 is the first
    pass's best, whose n-gram score per word decides the gate). 1-D arrays of equal length."""
    am = np.asarray(am, dtype=np.float64)
    ngram = np.asarray(ngram, dtype=np.float64)
    llm = np.asarray(llm, dtype=np.float64)
    n_words = np.asarray(n_words, dtype=np.float64)
    if am.size == 0:
        return np.zeros(0)
    if is_gated(float(ngram[0]), int(n_words[0]), options.gate):
        return options.acoustic_scale * am + ngram
    return options.acoustic_scale * am + (1.0 - options.alpha) * ngram + options.alpha * llm


def sentence(h: WordHypothesis) -> str:
    return " ".join(h.words)


def distinct(hyps: Sequence[WordHypothesis]) -> list[WordHypothesis]:
    """The first (best first-pass) hypothesis of each sentence, in first-pass order."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for h in hyps:
        if h.words not in seen:
            seen.add(h.words)
            out.append(h)
    return out


def rescore_nbest(
    hyps: Sequence[WordHypothesis],
    llm_scores: Callable[[str], float] | dict[str, float],
    options: RescoreOptions,
) -> list[WordHypothesis]:
    """One trial's n-best list (first-pass order) with ``llm`` and ``total`` set from
    ``llm_scores`` (sentence -> LLM score), duplicates merged, best total first (ties: the
    first-pass order)."""
    unique = distinct(sorted(hyps, key=lambda h: -h.score))
    if not unique:
        return []
    lookup = llm_scores.__getitem__ if isinstance(llm_scores, dict) else llm_scores
    llm = [float(lookup(sentence(h))) for h in unique]
    totals = rescore_totals(
        [h.am for h in unique], [h.ngram for h in unique], llm, [len(h.words) for h in unique],
        options,
    )  # fmt: skip
    scored = [
        replace(h, llm=s, total=float(t)) for h, s, t in zip(unique, llm, totals, strict=True)
    ]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i].ranking_score, i))
    return [scored[i] for i in order]


class LlmRescorer:
    """A :data:`~brain2text.evaluation.search.Rescorer`: each distinct sentence of the n-best
    list scored once by the LLM, then ranked by :func:`rescore_totals`."""

    def __init__(self, scorer: SentenceScorer, options: RescoreOptions | None = None) -> None:
        self.scorer = scorer
        self.options = options or RescoreOptions()

    def rescore_group(
        self, nbests: Sequence[list[WordHypothesis]], emissions: Sequence[np.ndarray]
    ) -> list[list[WordHypothesis]]:
        """Each of several trials' lists rescored, their distinct sentences scored in one
        call first (the scorer keeps them, so each list's rescoring costs no model pass):
        packed batches of several lists run faster than one list's, with the same scores."""
        texts = dict.fromkeys(sentence(h) for hyps in nbests for h in hyps)
        if texts:
            self.scorer.score(list(texts))
        return [self(hyps, e) for hyps, e in zip(nbests, emissions, strict=True)]

    def __call__(self, hyps: list[WordHypothesis], log_probs: np.ndarray) -> list[WordHypothesis]:
        unique = distinct(hyps)
        if not unique:
            return []
        texts = [sentence(h) for h in unique]
        scores = dict(zip(texts, (float(s) for s in self.scorer.score(texts)), strict=True))
        return rescore_nbest(unique, scores, self.options)


def first_pass_best(hyps: Sequence[WordHypothesis]) -> WordHypothesis | None:
    """The hypothesis the first pass ranked first (highest decoder score)."""
    return max(hyps, key=lambda h: h.score) if hyps else None


@dataclass(frozen=True)
class Oracle:
    """The lowest corpus WER any per-trial choice from the n-best lists reaches."""

    wer: float
    edits: int
    n_reference: int
    choices: list[int]  # per trial, the index of the chosen hypothesis (-1: empty list)


def nbest_oracle(
    ref_words: Sequence[Sequence[str]], nbests: Sequence[Sequence[WordHypothesis]]
) -> Oracle:
    """Per trial the hypothesis with the fewest word edits against the normalised reference
    words (ties: the earlier one); an empty n-best list counts as the empty sentence."""
    edits, choices = 0, []
    for ref, hyps in zip(ref_words, nbests, strict=True):
        if not hyps:
            edits += len(ref)
            choices.append(-1)
            continue
        costs = [edit_distance(list(ref), normalize_words(" ".join(h.words))) for h in hyps]
        best = int(np.argmin(costs))
        edits += costs[best]
        choices.append(best)
    n_reference = sum(len(r) for r in ref_words)
    return Oracle(edits / n_reference if n_reference else math.nan, edits, n_reference, choices)
