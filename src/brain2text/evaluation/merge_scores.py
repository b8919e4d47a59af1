"""The scores of the ensemble merges (:mod:`brain2text.evaluation.merge`): the generative
merge's prompt and target format, each member's CTC log-likelihood of a phoneme spelling, the
pooled n-best lists and their totals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from brain2text.decoding.beam import WordHypothesis
from brain2text.evaluation.words import normalize_words

LN10 = math.log(10.0)
CORRECTION_CUE = "sentence:"  # the prompt's last line; the model writes " word word ..." after it


# --- the prompt of the generative merge ------------------------------------------------------


def correction_prompt(candidates: Sequence[str], phonemes: Sequence[str]) -> str:
    """The one prompt format of the generative merge (training and decoding): one line per
    member, ``k. <its top sentence> | <its greedy phonemes>``, then the cue ``sentence:``
    after which the model writes the sentence (a space before every word)."""
    if len(candidates) != len(phonemes):
        raise ValueError(f"{len(candidates)} candidates but {len(phonemes)} phoneme strings")
    lines = ["candidates:"]
    lines += [
        f"{k}. {c} | {p}" for k, (c, p) in enumerate(zip(candidates, phonemes, strict=True), 1)
    ]
    return "\n".join([*lines, CORRECTION_CUE])


def correction_target(sentence: str) -> str:
    """What the model learns to write after the prompt: the normalised words, each after a
    space (so the first word is tokenized as the generator writes it)."""
    return "".join(" " + w for w in normalize_words(sentence))


# --- the n-best merge ------------------------------------------------------------------------


def ctc_log_likelihoods(log_probs: np.ndarray, targets: Sequence[Sequence[int]]) -> np.ndarray:
    """float64 natural-log CTC likelihood of each phoneme-id sequence (1..40, blank 0) under
    one trial's (T', 41) log-probabilities: ``-ctc_loss(..., reduction="none")``, ``-inf``
    where a sequence cannot be aligned in T' frames."""
    if len(targets) == 0:
        return np.zeros(0, dtype=np.float64)
    frames = torch.from_numpy(np.asarray(log_probs, dtype=np.float64))
    n, length = len(targets), frames.shape[0]
    flat = torch.tensor([int(i) for t in targets for i in t], dtype=torch.long)
    loss = torch.nn.functional.ctc_loss(
        frames[:, None, :].expand(length, n, frames.shape[1]),
        flat,
        input_lengths=torch.full((n,), length, dtype=torch.long),
        target_lengths=torch.tensor([len(t) for t in targets], dtype=torch.long),
        blank=0,
        reduction="none",
        zero_infinity=False,
    )
    return -loss.numpy()


def pool(nbests: Sequence[Sequence[WordHypothesis]]) -> list[WordHypothesis]:
    """The members' n-best lists as one list of distinct word sequences, each as the first
    member (in the order given) that proposed it has it."""
    seen: dict[tuple[str, ...], WordHypothesis] = {}
    for nbest in nbests:
        for hyp in nbest:
            seen.setdefault(hyp.words, hyp)
    return list(seen.values())


@dataclass(frozen=True)
class MergeWeights:
    """How a merged candidate's scores add up: the first pass's ``lm_weight`` (on log10) and
    ``word_score`` without an LLM; with one, ``rescoring`` (a ``RescoreOptions``)."""

    lm_weight: float
    word_score: float
    rescoring: Any = None

    def totals(self, am: np.ndarray, ngram: np.ndarray, llm: np.ndarray | None, n_words):
        n_words = np.asarray(n_words, dtype=np.float64)
        if llm is None:
            return am + self.lm_weight * ngram / LN10 + self.word_score * n_words
        from brain2text.evaluation.rescoring import RescoreOptions, rescore_totals

        options = self.rescoring if self.rescoring is not None else RescoreOptions()
        return np.asarray(rescore_totals(am, ngram, llm, n_words, options), dtype=np.float64)


def mean_acoustic(member_log_probs: Sequence[np.ndarray], spellings: Sequence[Sequence[int]]):
    """Per spelling, the mean over members of its CTC log-likelihood."""
    return np.mean([ctc_log_likelihoods(lp, spellings) for lp in member_log_probs], axis=0)


def merge_nbest(
    nbests: Sequence[Sequence[WordHypothesis]],
    member_log_probs: Sequence[np.ndarray],
    weights: MergeWeights,
    llm_scores: Mapping[str, float] | None = None,
) -> list[WordHypothesis]:
    """One trial: the members' pooled n-best lists, each candidate with the members' mean
    acoustic score (``am``), its n-gram score, its LLM score (from ``llm_scores``, sentence ->
    score, when given) and ``total``, best total first (ties: pooled order)."""
    candidates = pool(nbests)
    if not candidates:
        return []
    am = mean_acoustic(member_log_probs, [h.phonemes for h in candidates])
    ngram = np.array([h.ngram for h in candidates], dtype=np.float64)
    n_words = [len(h.words) for h in candidates]
    first_pass = weights.totals(am, ngram, None, n_words)
    order = np.argsort(-first_pass, kind="stable")  # the best first-pass candidate first
    candidates, am, ngram = [candidates[i] for i in order], am[order], ngram[order]
    n_words = [n_words[i] for i in order]
    llm = None
    if llm_scores is not None:
        llm = np.array([llm_scores[" ".join(h.words)] for h in candidates], dtype=np.float64)
    totals = weights.totals(am, ngram, llm, n_words)
    totals = np.where(np.isnan(totals), -np.inf, totals)
    merged = [
        replace(
            h,
            am=float(am[i]),
            ngram=float(ngram[i]),
            llm=None if llm is None else float(llm[i]),
            total=float(totals[i]),
        )
        for i, h in enumerate(candidates)
    ]
    best_first = np.argsort(-totals, kind="stable")
    return [merged[i] for i in best_first]
