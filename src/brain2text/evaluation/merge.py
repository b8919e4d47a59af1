"""Ensembles merged by their language models: ``evaluate RUN1 RUN2 ... --ensemble --merge``.

``--merge logits`` (the default, :mod:`brain2text.evaluation.ensemble`) averages the members'
per-frame log-probabilities and decodes the average. The merges here decode every member on
its own emissions first (the same word search, the same n-best size):

* ``nbest`` (:mod:`~brain2text.evaluation.merge_scores`): the members' n-best lists are
  pooled (distinct word sequences). Every candidate is scored by every member: its acoustic
  score ``am`` is the mean over members of the CTC log-likelihood (natural log, all alignments
  summed: ``-ctc_loss``) of one phoneme spelling under that member's ``(T', 41)`` log-probabilities.
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
  ``lm finetune --task correct`` reads the correction prompt (the members' top sentences
  and their greedy phonemes) and writes the sentence, constrained to the LM folder's words.

Both write ``OUT/eval/<split>-merge-nbest/`` (or ``-merge-generate/``) and, from the same
command, the logit average's word decoding in ``OUT/eval/<split>-lm/``; the merge's
``summary.json`` says how it merged (``combination``, ``merge``) and gives the logit average's
WER beside its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.decoding.llm_examples import TextExample
from brain2text.errors import DataError
from brain2text.evaluation.members import MemberWords, decode_members, load_members, member_words
from brain2text.evaluation.merge_scores import (
    MergeWeights,
    correction_prompt,
    correction_target,
    merge_nbest,
)
from brain2text.evaluation.pipeline import (
    Evaluation,
    Trials,
    decoded_words_evaluation,
    word_evaluation,
)
from brain2text.evaluation.search import DecodedWords, WordSearch
from brain2text.evaluation.summary import EvalSummary

MERGES = ("logits", "nbest", "generate")


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


def merged_words(
    members: Sequence[MemberWords],
    weights: MergeWeights,
    scorer: Any = None,
) -> DecodedWords:
    """Every trial's merged n-best list; the LLM (``scorer``, a SentenceScorer) scores each
    distinct pooled sentence once, and its time is shared evenly among the trials' times."""
    n_trials = len(members[0].words.nbests)
    llm_scores, llm_seconds = None, 0.0
    if scorer is not None:
        start = time.perf_counter()
        sentences = list(
            dict.fromkeys(" ".join(h.words) for m in members for n in m.words.nbests for h in n)
        )
        llm_scores = dict(zip(sentences, (float(v) for v in scorer.score(sentences)), strict=True))
        llm_seconds = (time.perf_counter() - start) / max(n_trials, 1)
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
        seconds.append(searched + llm_seconds + time.perf_counter() - start)
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
        if isinstance(llm, MergeModels):
            return llm
        from brain2text.decoding.llm import as_scorer

        scorer = as_scorer(llm, device=device_name)
        return cls() if scorer is None else cls(scorer, scorer.lm)

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
    search: WordSearch,
    models: MergeModels,
    rescoring: Any = None,
) -> MergedEvaluation:
    """The members' words merged by ``method`` ("nbest" or "generate"), and the logit average
    (``averaged``) decoded with the same ``search`` (an LM folder's first pass; rescored by the
    LLM too for "nbest")."""
    from brain2text.decoding.lm import open_lm

    logit_search = search
    if models.scorer is not None and method == "nbest":
        logit_search = replace(search, rescorer=models.rescorer(rescoring))
    logits = word_evaluation(trials, averaged, logit_search, header, split_name)
    members = member_words(member_emissions, search)
    options = search.options or {}
    weights = MergeWeights(float(options["lm_weight"]), float(options["word_score"]), rescoring)
    if method == "nbest":
        words = merged_words(members, weights, models.scorer)
    else:
        from brain2text.evaluation.merge_generate import generated_words

        lm = open_lm(Path(str(search.lm)))
        words = generated_words(members, models.causal_lm, lm, weights, models.scorer)
    record = merge_record(method, weights, models, words, logits.summary, split_name)
    merged_header = replace(header, combination=COMBINATIONS[method], merge=record)
    merged = decoded_words_evaluation(
        trials, words, search, merged_header, split_name, first_pass=method == "nbest"
    )
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
