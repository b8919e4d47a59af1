"""Ensembles merged by their language models: ``evaluate RUN1 RUN2 ... --ensemble --merge``.

``--merge logits`` (the default, :mod:`brain2text.evaluation.ensemble`) averages the members'
per-frame log-probabilities and decodes the average. The merges here decode every member on
its own emissions first (the same word search, the same n-best size):

* ``nbest`` (:func:`merge_nbest`): the members' n-best lists are pooled (distinct word
  sequences). Every candidate is scored by every member: its acoustic score ``am`` is the mean
  over members of the CTC log-likelihood (natural log, all alignments summed:
  ``-ctc_loss``) of one phoneme spelling under that member's ``(T', 41)`` log-probabilities.
  The spelling is that of the path that proposed the candidate (the first member, in the order
  given, whose n-best holds it): the lexicon spelling the search chose, SIL after every word,
  with the SILs the path reads before the first word and in gaps. Its ``ngram`` score is the
  n-gram LM's (natural log, ``</s>`` included), the same whichever member proposed it. The
  total is, with an LLM (``--llm``), ``acoustic_scale * am + (1 - alpha) * ngram + alpha *
  llm`` (:func:`~brain2text.evaluation.rescoring.rescore_totals`, gating included); without
  one, the first pass's weighting: ``am + lm_weight * ngram / ln 10 + word_score * n_words``
  (the search applies ``lm_weight`` to log10 scores). The best total wins. Note that ``am``
  here sums all CTC alignments while the first pass's ``am`` is its best path's.
* ``generate`` (:mod:`brain2text.evaluation.merge_generate`): a causal LM fine-tuned with
  ``lm finetune --task correct`` reads :func:`correction_prompt` (the members' top sentences
  and their greedy phonemes) and writes the sentence, constrained to the LM folder's words.

Both write ``OUT/eval/<split>-merge-nbest/`` (or ``-merge-generate/``) and, from the same
command, the logit average's word decoding in ``OUT/eval/<split>-lm/``; the merge's
``summary.json`` says how it merged (``combination``, ``merge``) and gives the logit average's
WER beside its own.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brain2text.decoding.beam import WordHypothesis
from brain2text.decoding.llm_finetune import TextExample
from brain2text.errors import DataError
from brain2text.evaluation.members import MemberWords, decode_members, load_members, member_words
from brain2text.evaluation.pipeline import (
    Evaluation,
    Trials,
    decoded_words_evaluation,
    word_evaluation,
)
from brain2text.evaluation.search import DecodedWords
from brain2text.evaluation.summary import EvalSummary
from brain2text.evaluation.words import normalize_words

LN10 = math.log(10.0)
CORRECTION_CUE = "sentence:"  # the prompt's last line; the model writes " word word ..." after it
MERGES = ("logits", "nbest", "generate")


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


# --- the examples of the generative merge --------------------------------------------------


def correction_examples(
    run_dirs: Sequence[Path],
    lm_dir: Path,
    splits: Sequence[str] = ("train", "val"),
    *,
    checkpoint: str = "best",
    weights: str = "raw",
    data_path: Path | None = None,
    device_name: str = "auto",
    batch_size: int | None = None,
    **word_options: Any,
) -> list[TextExample]:
    """The examples of ``lm finetune --task correct``: per labelled trial of ``splits`` (of the
    members' training data: "train", "val"), the prompt of the members' top sentences (decoded
    with ``lm_dir``; ``word_options``: beam options) and greedy phonemes, and as target the
    reference sentence (:func:`correction_target`)."""
    from brain2text.evaluation.search import word_search

    search = word_search(None, Path(lm_dir), None, **word_options)
    examples: list[TextExample] = []
    for split_name in splits:
        targets = load_members(run_dirs, split_name, checkpoint, weights, data_path, device_name)
        trials = targets[0].trials(None)
        if trials.references is None:
            continue
        members = member_words([d.emissions for d in decode_members(targets, batch_size)], search)
        for k in range(len(trials.indices)):
            target = correction_target(trials.text(k))
            if not target:
                continue
            prompt = correction_prompt(
                [m.words.sentences[k] for m in members], [m.greedy_phonemes(k) for m in members]
            )
            examples.append(TextExample(prompt, target))
    if not examples:
        raise DataError(
            f"{run_dirs[0]}: no labelled trial in the splits {', '.join(splits)} to learn from"
        )
    return examples


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


def merged_words(
    members: Sequence[MemberWords],
    weights: MergeWeights,
    scorer: Any = None,
) -> DecodedWords:
    """Every trial's merged n-best list; the LLM (``scorer``, a SentenceScorer) scores each
    distinct pooled sentence once."""
    n_trials = len(members[0].words.nbests)
    llm_scores = None
    if scorer is not None:
        sentences = list(
            dict.fromkeys(" ".join(h.words) for m in members for n in m.words.nbests for h in n)
        )
        llm_scores = dict(zip(sentences, (float(v) for v in scorer.score(sentences)), strict=True))
    nbests, seconds = [], []
    for k in range(n_trials):
        start = time.perf_counter()
        nbests.append(
            merge_nbest(
                [m.words.nbests[k] for m in members],
                [m.emissions[k] for m in members],
                weights,
                llm_scores,
            )
        )
        searched = sum(m.words.seconds[k] for m in members)
        seconds.append(searched + time.perf_counter() - start)
    return DecodedWords(nbests, seconds)


# --- the evaluation of a merge ---------------------------------------------------------------

COMBINATIONS = {
    "nbest": "n-best merge: the members' pooled n-best lists, every candidate scored by every "
    "member (mean CTC log-likelihood of the proposing path's phonemes) with the n-gram "
    "(and LLM) scores; the best total wins",
    "generate": "generative merge: the LLM writes the sentence from the members' top sentences "
    "and greedy phonemes, constrained to the lexicon's words",
}
ACOUSTIC = {
    "nbest": "mean over members of the CTC log-likelihood of the proposing path's phonemes",
    "generate": "mean over members of the CTC log-likelihood of the lexicon spelling "
    "(first spelling of each word, SIL after every word)",
}


@dataclass(frozen=True)
class MergeModels:
    """The LLM of a merge: ``scorer`` (a SentenceScorer) and its ``causal_lm``; None: none."""

    scorer: Any = None
    causal_lm: Any = None

    @classmethod
    def of(cls, llm: Any, device_name: str = "auto") -> MergeModels:
        """From a loaded SentenceScorer, or a model spec to load (None: no LLM)."""
        if llm is None:
            return cls()
        if isinstance(llm, MergeModels):
            return llm
        if hasattr(llm, "score") and hasattr(llm, "lm"):
            return cls(llm, llm.lm)
        from brain2text.decoding.llm import SentenceScorer, load_causal_lm

        causal_lm = load_causal_lm(llm, device=device_name)
        return cls(SentenceScorer(causal_lm), causal_lm)

    def rescorer(self, options: Any = None) -> Any:
        """The n-best rescoring stage of a single search with this LLM (None: no LLM)."""
        if self.scorer is None:
            return None
        from brain2text.evaluation.rescoring import LlmRescorer

        return LlmRescorer(self.scorer, options)


@dataclass(frozen=True)
class MergedEvaluation:
    """A merge's evaluation and, beside it, the logit average's of the same members."""

    method: str
    merged: Evaluation
    logits: Evaluation

    def write(self, eval_dir: Path, split_name: str) -> EvalSummary:
        """``<split>-lm/`` (the logit average) then ``<split>-merge-<method>/``."""
        self.logits.write(eval_dir / f"{split_name}-lm")
        return self.merged.write(eval_dir / f"{split_name}-merge-{self.method}")


def merged_evaluation(
    method: str,
    trials: Trials,
    member_emissions: Sequence[list[np.ndarray]],
    averaged: list[np.ndarray],
    header: EvalSummary,
    split_name: str,
    lm_dir: Path,
    models: MergeModels,
    rescoring: Any = None,
    **word_options: Any,
) -> MergedEvaluation:
    """The members' words merged by ``method`` ("nbest" or "generate"), and the logit average
    (``averaged``) decoded with the same search (rescored by the LLM too for "nbest")."""
    from brain2text.decoding.lm import open_lm
    from brain2text.evaluation.search import word_search

    search = word_search(None, lm_dir, None, **word_options)  # the members' first pass
    logit_search = search
    if models.scorer is not None and method == "nbest":
        logit_search = word_search(
            None, lm_dir, None, rescorer=models.rescorer(rescoring), **word_options
        )
    logits = word_evaluation(trials, averaged, logit_search, header, split_name)
    members = member_words(member_emissions, search)
    options = search.options or {}
    weights = MergeWeights(float(options["lm_weight"]), float(options["word_score"]), rescoring)
    if method == "nbest":
        words = merged_words(members, weights, models.scorer)
    else:
        from brain2text.evaluation.merge_generate import generated_words

        words = generated_words(members, models.causal_lm, open_lm(lm_dir), weights, models.scorer)
    record = merge_record(method, weights, models, words, logits.summary, split_name)
    merged_header = replace(header, combination=COMBINATIONS[method], merge=record)
    merged = decoded_words_evaluation(trials, words, search, merged_header, split_name)
    return MergedEvaluation(method, merged, logits)


def merge_record(
    method: str,
    weights: MergeWeights,
    models: MergeModels,
    words: DecodedWords,
    logits: EvalSummary,
    split_name: str,
) -> dict[str, Any]:
    """What ``summary.json``'s ``merge`` says: how the merge scored, and the logit average."""
    from brain2text.decoding.llm import describe

    with_llm = models.scorer is not None
    if with_llm:
        total = "acoustic_scale * am + (1 - alpha) * ngram + alpha * llm"
    else:
        total = "am + lm_weight * ngram / ln(10) + word_score * n_words"
    rescoring = weights.rescoring
    return {
        "method": method,
        "am": ACOUSTIC[method],
        "total": total,
        "lm_weight": weights.lm_weight,
        "word_score": weights.word_score,
        "rescoring": dataclasses.asdict(rescoring) if rescoring is not None else None,
        "llm": describe(models.causal_lm) if with_llm else None,
        "candidates_per_sentence": float(np.mean([len(n) for n in words.nbests]))
        if words.nbests
        else 0.0,
        "logit_average": {
            "folder": f"{split_name}-lm",
            "combination": logits.combination,
            "wer": logits.wer,
            "wer_ci95": logits.wer_ci95,
            "per": logits.per,
        },
    }
