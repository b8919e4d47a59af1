"""One path from emissions to an evaluation folder: decode -> score -> files.

The network's pass (:func:`~brain2text.evaluation.scoring.decode_split`: greedy hypotheses,
CTC losses and, when kept, each trial's log-probabilities) feeds one of two evaluations:

* :func:`phoneme_evaluation`: the greedy phonemes scored against the references (PER, loss,
  per-day PER);
* :func:`word_evaluation`: the emissions through a :class:`~brain2text.evaluation.search.
  WordSearch` (beam search + LM or a decoding graph, then the n-best rescoring stage), scored
  as WER and the PER of the decoded phonemes with bootstrap intervals.

Both return an :class:`Evaluation` (the summary and the folder's files) that
:meth:`Evaluation.write` writes whole. ``evaluate`` (one run or an ensemble, phonemes or
words), ``lm tune`` and training's evaluations all go through here; references always come
from :mod:`brain2text.evaluation.labels`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.data.dataset import PreparedDataset, PreparedSplit
from brain2text.data.feature_spec import KIND_B2T25
from brain2text.decoding.beam import WordHypothesis
from brain2text.evaluation.files import (
    DECODED_FILE,
    DECODED_ROWS_FILE,
    ERRORS_FILE,
    HOLDOUT_SUBMISSION_FILE,
    HYPOTHESES_FILE,
    SUBMISSION_FILE,
    Aligned,
    error_report,
    json_lines,
    lines_of,
    submission_csv,
    with_summary,
    write_folder,
)
from brain2text.evaluation.labels import References, dataset_kind
from brain2text.evaluation.metrics import rates_by_day
from brain2text.evaluation.rescoring import first_pass_best, nbest_oracle
from brain2text.evaluation.scoring import Decoded, score
from brain2text.evaluation.search import DecodedWords, WordSearch, decode_words
from brain2text.evaluation.summary import EvalSummary
from brain2text.evaluation.words import (
    Interval,
    RateWithInterval,
    normalize_words,
    paired_change,
    rate_with_interval,
)
from brain2text.phonemes import to_symbols

HOLDOUT_SPLIT = "competition"  # the 2023 hold-out, whose words are also a submission.txt


@dataclass(frozen=True)
class Trials:
    """The trials an evaluation decodes, in order, and what they are scored against."""

    data: PreparedDataset
    split: PreparedSplit
    indices: np.ndarray
    references: References | None  # None: unlabelled, nothing to score

    @property
    def day_of(self) -> np.ndarray:
        return self.split.day_index[self.indices]

    def where(self, k: int) -> tuple[str, int]:
        """(session, trial number in it) of the k-th trial."""
        i = int(self.indices[k])
        return self.split.session_of(i), int(self.split.trial[i])

    def text(self, k: int) -> str:
        texts = self.references.texts if self.references is not None else None
        return texts[k] if texts is not None else self.split.text(int(self.indices[k]))


def is_submission(data: PreparedDataset, split_name: str) -> bool:
    """Brain-to-Text '25's test split: its decoding is also written as ``submission.csv``."""
    return dataset_kind(data) == KIND_B2T25 and split_name == "test"


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's summary and the files of its folder (name -> text, summary included)."""

    summary: EvalSummary
    files: dict[str, str]

    def write(self, folder: Path) -> EvalSummary:
        write_folder(folder, self.files)
        return self.summary


def phoneme_evaluation(
    trials: Trials, decoded: Decoded, header: EvalSummary, split_name: str
) -> Evaluation:
    """The greedy phonemes of ``decoded`` scored (or, unlabelled, listed). ``header``: the
    summary naming what was evaluated, whose figures are filled in here."""
    hyps = [to_symbols(h.tolist()) for h in decoded.hypotheses]
    n = len(hyps)
    files: dict[str, str] = {}
    if is_submission(trials.data, split_name):
        files[SUBMISSION_FILE] = submission_csv([" ".join(h) for h in hyps])
    if trials.references is None:
        texts = [" ".join(h) for h in hyps]
        rows = [
            {"session": s, "trial": t, "hyp": texts[k]}
            for k, (s, t) in enumerate(map(trials.where, range(n)))
        ]
        files[DECODED_FILE] = lines_of(texts)
        files[DECODED_ROWS_FILE] = json_lines(rows)
        summary = replace(header, n_sentences=n, labelled=False)
        return Evaluation(summary, with_summary(files, summary))
    refs = trials.references.ids
    scored = score(refs, decoded, trials.day_of, trials.data.days)
    sentences = [
        Aligned(*trials.where(k), trials.text(k), to_symbols(refs[k]), hyps[k]) for k in range(n)
    ]
    rows = [
        {
            "session": s.session,
            "trial": s.trial,
            "text": s.text,
            "ref": " ".join(s.ref),
            "hyp": " ".join(s.hyp),
            "edit_distance": s.edits,
            "per": s.rate,
        }
        for s in sentences
    ]
    files[HYPOTHESES_FILE] = json_lines(rows)
    files[ERRORS_FILE] = error_report(sentences, "phonemes", "PER")
    summary = replace(
        header,
        loss=scored.loss,
        per=scored.per,
        per_mean_sentence=scored.per_mean_sentence,
        edit_distance=scored.edit_distance,
        n_phonemes=scored.n_phonemes,
        n_sentences=scored.n_sentences,
        per_day=scored.per_day,
        labelled=True,
    )
    return Evaluation(summary, with_summary(files, summary))


@dataclass(frozen=True)
class WordScore:
    wer: RateWithInterval
    wer_per_day: dict[str, float]
    per: RateWithInterval  # of the best sentences' phonemes


def score_words(
    references: References, words: DecodedWords, day_of: np.ndarray, days: list[str]
) -> WordScore:
    """WER (with its interval, overall and per day) and the decoded phonemes' PER."""
    ref_words = [normalize_words(r) for r in references.texts or [""] * len(words.nbests)]
    hyp_words = [normalize_words(h) for h in words.sentences]
    return WordScore(
        rate_with_interval(ref_words, hyp_words),
        rates_by_day(ref_words, hyp_words, day_of, days),
        rate_with_interval(references.ids, words.phoneme_ids),
    )


def word_evaluation(
    trials: Trials,
    emissions: list[np.ndarray],
    search: WordSearch,
    header: EvalSummary,
    split_name: str,
) -> Evaluation:
    """Decode ``emissions`` (one per trial) to words and score them when labelled."""
    return decoded_words_evaluation(
        trials, decode_words(search, emissions), search, header, split_name
    )


def decoded_words_evaluation(
    trials: Trials,
    words: DecodedWords,
    search: WordSearch,
    header: EvalSummary,
    split_name: str,
    first_pass: bool = True,
) -> Evaluation:
    """Words already decoded (one n-best list per trial, best first; ``search``: the search
    that decoded them, as the summary names it) scored when labelled. ``first_pass``: whether
    the lists were ranked by a first pass before their totals (False: written sentences, with
    no first pass to compare against)."""
    hyps, seconds = words.sentences, words.seconds
    refs = trials.references
    summary = replace(
        search.describe(header),
        decode_ms_per_sentence=1000 * statistics.fmean(seconds) if seconds else math.nan,
        decode_ms_median=1000 * statistics.median(seconds) if seconds else math.nan,
        n_sentences=len(hyps),
        labelled=refs is not None,
    )
    rows, sentences = [], []
    for k, nbest in enumerate(words.nbests):
        session, trial = trials.where(k)
        row = {
            "session": session,
            "trial": trial,
            "hyp": hyps[k],
            "phonemes": " ".join(to_symbols(list(nbest[0].phonemes))) if nbest else "",
            "nbest": [_nbest_entry(h) for h in nbest],
        }
        if refs is not None:
            text = trials.text(k)
            aligned = Aligned(session, trial, text, normalize_words(text), normalize_words(hyps[k]))
            row |= {"text": text, "word_edits": aligned.edits}
            sentences.append(aligned)
        rows.append(row)
    files = {DECODED_FILE: lines_of(hyps)}
    if split_name == HOLDOUT_SPLIT:
        files[HOLDOUT_SUBMISSION_FILE] = files[DECODED_FILE]
    if is_submission(trials.data, split_name):
        files[SUBMISSION_FILE] = submission_csv(hyps)
    if refs is not None:
        scored = score_words(refs, words, trials.day_of, trials.data.days)
        summary = replace(
            summary,
            wer=scored.wer.rate,
            wer_ci95=_bounds(scored.wer.interval),
            wer_edits=scored.wer.edits,
            wer_reference=scored.wer.n_reference,
            wer_per_day=scored.wer_per_day,
            per=scored.per.rate,
            per_ci95=_bounds(scored.per.interval),
            per_edits=scored.per.edits,
            per_reference=scored.per.n_reference,
        )
        ref_words = [normalize_words(r) for r in refs.texts or [""] * len(words.nbests)]
        summary = replace(summary, **rescoring_figures(ref_words, words, first_pass))
        files[ERRORS_FILE] = error_report(sentences, "words", "WER")
    files[HYPOTHESES_FILE] = json_lines(rows)
    return Evaluation(summary, with_summary(files, summary))


def _nbest_entry(h: WordHypothesis) -> dict[str, object]:
    """An n-best row: the sentence, the first pass's score and, where known, the scores it is
    ranked on (``am``, ``ngram``: natural log; ``llm``, ``total`` once rescored)."""
    entry: dict[str, object] = {"text": " ".join(h.words), "score": h.score}
    known = {"am": h.am, "ngram": h.ngram, "llm": h.llm, "total": h.total}
    entry |= {k: v for k, v in known.items() if v is not None and not math.isnan(v)}
    return entry


def rescoring_figures(
    ref_words: list[list[str]], words: DecodedWords, first_pass: bool = True
) -> dict[str, Any]:
    """The n-best oracle WER (the best any rescoring of these lists could reach) and the mean
    list size; for rescored lists (``total`` set) of a ``first_pass`` also the WER of the first
    pass's best sentences (without the rescoring) with its interval, and the rescoring's change
    of WER (negative: fewer errors) with its paired interval."""
    figures: dict[str, Any] = {
        "nbest_oracle_wer": nbest_oracle(ref_words, words.nbests).wer,
        "nbest_mean": statistics.fmean(len(n) for n in words.nbests) if words.nbests else None,
    }
    if not first_pass or not any(h.total is not None for n in words.nbests for h in n):
        return figures
    firsts = [first_pass_best(n) for n in words.nbests]
    first = [normalize_words(" ".join(h.words)) if h is not None else [] for h in firsts]
    rate = rate_with_interval(ref_words, first)
    change = paired_change(ref_words, first, [normalize_words(s) for s in words.sentences])
    return figures | {
        "wer_first_pass": rate.rate,
        "wer_first_pass_ci95": _bounds(rate.interval),
        "wer_change": change.change,
        "wer_change_ci95": _bounds(change.interval),
    }


def _bounds(interval: Interval) -> list[float | None]:
    return [interval.low, interval.high]
