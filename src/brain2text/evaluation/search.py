"""The decode stage: a trial's emissions to phonemes (greedy CTC) or to words.

Words come from one :class:`WordSearch`, built one way (:func:`word_search`) for ``evaluate``,
ensembles, ``lm tune``, the :class:`~brain2text.inference.decoder.Decoder` and training's
``eval.word_decoding``: the lexicon-constrained CTC beam search with an n-gram LM
(:class:`~brain2text.decoding.beam.WordDecoder`) or a Kaldi decoding graph
(:class:`~brain2text.decoding.wfst.WfstDecoder`), whose n-best list then goes through an
optional :data:`Rescorer` (a later stage that reorders or rescores the n-best, e.g. with a
neural LM; none by default).

The beam options of an LM folder are, in order of precedence: those given, those ``brain2text
lm tune`` wrote to ``RUN/lm_tuning.json`` for this LM folder, the defaults.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brain2text.decoding.beam import BeamOptions, WordDecoder, WordHypothesis
from brain2text.decoding.greedy import collapse
from brain2text.decoding.llm import END_MARK
from brain2text.decoding.lm import LanguageModel, open_lm
from brain2text.decoding.wfst import WfstDecoder
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.rescoring import DEFAULT_LLM_NBEST, LlmRescorer, RescoreOptions
from brain2text.evaluation.summary import EvalSummary

if TYPE_CHECKING:
    from brain2text.decoding.llm import SentenceScorer

TUNING_FILE = "lm_tuning.json"
LLM_NEEDS_LM = "--llm rescores the n-best of --lm: give an LM folder with --lm"

# (n-best list best first, the trial's (T', 41) log-probabilities) -> the n-best list reordered
Rescorer = Callable[[list[WordHypothesis], np.ndarray], list[WordHypothesis]]
LLM_GROUP = 16  # trials whose n-best sentences an LLM rescorer scores in one call


def greedy_ids(frames: np.ndarray) -> tuple[int, ...]:
    """The greedy CTC path of (T', 41) logits or log-probabilities: the frames' best classes,
    repeats merged and blanks dropped (phoneme ids 1..40)."""
    if len(frames) == 0:
        return ()
    return tuple(int(i) for i in collapse(np.asarray(frames).argmax(-1)) if i != 0)


@dataclass(frozen=True)
class WordSearch:
    """A word decoder and what a summary says of it (``lm`` or ``wfst``, its options and
    where they came from)."""

    decoder: WordDecoder | WfstDecoder
    lm: str | None = None
    wfst: str | None = None
    options: dict | None = None
    options_from: str | None = None
    dropped_homophones: int | None = None
    rescorer: Rescorer | None = None
    llm: dict[str, Any] | None = None  # the rescoring LLM's describe() record
    rescoring: dict[str, Any] | None = None  # its RescoreOptions, nbest and their source

    def nbest(self, log_probs: np.ndarray) -> list[WordHypothesis]:
        """The n-best sentences of one trial's (T', 41) log-probabilities, best first."""
        hyps = self.decoder.decode(log_probs)
        return self.rescorer(hyps, log_probs) if self.rescorer is not None else hyps

    def describe(self, summary: EvalSummary) -> EvalSummary:
        """``summary`` with what it says of the search."""
        return replace(
            summary,
            lm=self.lm,
            wfst=self.wfst,
            options=self.options,
            options_from=self.options_from,
            dropped_homophones=self.dropped_homophones,
            llm=self.llm,
            rescoring=self.rescoring,
        )


@dataclass(frozen=True)
class DecodedWords:
    """Word decoding of several trials, in order."""

    nbests: list[list[WordHypothesis]]
    seconds: list[float]  # each trial's search time

    @property
    def sentences(self) -> list[str]:
        return [sentence_of(n) for n in self.nbests]

    @property
    def phoneme_ids(self) -> list[list[int]]:
        """The phonemes of each trial's best sentence."""
        return [list(n[0].phonemes) if n else [] for n in self.nbests]


def decode_words(search: WordSearch, emissions: Sequence[np.ndarray]) -> DecodedWords:
    """Each trial's n-best list, in order. An LLM rescorer rescores :data:`LLM_GROUP` trials'
    lists at a time (their distinct sentences in one call: longer packed batches, the same
    scores); each trial's time is its search's plus its share of its group's rescoring."""
    rescorer = search.rescorer
    size = LLM_GROUP if isinstance(rescorer, LlmRescorer) else 1
    nbests, seconds = [], []
    for first in range(0, len(emissions), size):
        group = emissions[first : first + size]
        lists, times = [], []
        for log_probs in group:
            start = time.perf_counter()
            lists.append(search.decoder.decode(log_probs))
            times.append(time.perf_counter() - start)
        share = 0.0
        if rescorer is not None:
            start = time.perf_counter()
            if isinstance(rescorer, LlmRescorer):
                lists = rescorer.rescore_group(lists, group)
            else:
                lists = [rescorer(hyps, frames) for hyps, frames in zip(lists, group, strict=True)]
            share = (time.perf_counter() - start) / len(group)
        nbests += lists
        seconds += [t + share for t in times]
    return DecodedWords(nbests, seconds)


def sentence_of(hyps: Sequence[WordHypothesis]) -> str:
    return " ".join(hyps[0].words) if hyps else ""


def tuning_record(run_dir: Path, lm: LanguageModel) -> dict[str, Any] | None:
    """``RUN/lm_tuning.json`` when ``lm tune`` wrote it for this LM folder, else None."""
    path = run_dir / TUNING_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    if not isinstance(record, dict) or record.get("lm") != str(lm.folder.resolve()):
        return None
    return record


def tuned_options(run_dir: Path, lm: LanguageModel) -> BeamOptions | None:
    """The options ``lm tune`` chose for this LM folder, or None."""
    record = tuning_record(run_dir, lm)
    return BeamOptions(**record["options"]) if record is not None else None


def choose_options(
    run_dir: Path | None, lm: LanguageModel, **given: Any
) -> tuple[BeamOptions, str]:
    """(options, their source): ``given`` values (None: not given) over the tuned ones (with a
    run folder) over the defaults."""
    tuned = tuned_options(run_dir, lm) if run_dir is not None else None
    base, source = (BeamOptions(), "defaults")
    if run_dir is not None and tuned is not None:
        base, source = tuned, str(run_dir / TUNING_FILE)
    chosen = {k: v for k, v in given.items() if v is not None}
    if chosen:
        source += " + command line (" + ", ".join(f"{k}={v}" for k, v in chosen.items()) + ")"
    return replace(base, **chosen), source


def tuned_rescoring(run_dir: Path, lm: LanguageModel, llm_name: str) -> dict[str, Any] | None:
    """The ``rescoring`` entry ``lm tune --llm`` wrote for this LM folder and this LLM, or
    None."""
    record = tuning_record(run_dir, lm)
    entry = record.get("rescoring") if record is not None else None
    if not isinstance(entry, dict):
        return None
    if entry.get("llm") == llm_name:
        return entry
    tuned = str(entry.get("llm"))
    if tuned.split(END_MARK)[0] == llm_name.split(END_MARK)[0]:  # the same model, another end
        print(
            f"warning: {run_dir / TUNING_FILE}: the LLM rescoring was tuned for {tuned}, not "
            f"{llm_name}; the defaults apply (give --llm-end as lm tune had it)",
            file=sys.stderr,
        )
    return None


@dataclass(frozen=True)
class ChosenRescoring:
    """The LLM rescoring's options, the tuned n-best size (None: not tuned), the first pass's
    n-gram weights ``lm tune --first-pass-weights`` chose for the LLM (empty: the n-gram's own
    best) and where they came from."""

    options: RescoreOptions
    nbest: int | None
    first_pass: dict[str, float]
    source: str


def choose_rescoring(
    run_dir: Path | None,
    lm: LanguageModel,
    llm_name: str,
    given: RescoreOptions | None,
) -> ChosenRescoring:
    """``given`` over the ``lm tune --llm`` entry for this LM folder and LLM over the
    defaults."""
    if given is not None:
        return ChosenRescoring(given, None, {}, "command line")
    tuned = tuned_rescoring(run_dir, lm, llm_name) if run_dir is not None else None
    if tuned is None or run_dir is None:
        return ChosenRescoring(RescoreOptions(), None, {}, "defaults")
    options = RescoreOptions(
        alpha=float(tuned["alpha"]),
        acoustic_scale=float(tuned["acoustic_scale"]),
        gate=None if tuned.get("gate") is None else float(tuned["gate"]),
    )
    nbest = tuned.get("nbest")
    first_pass: dict[str, float] = {
        k: float(tuned[k]) for k in ("lm_weight", "word_score") if k in tuned
    }
    return ChosenRescoring(
        options, int(nbest) if nbest is not None else None, first_pass, str(run_dir / TUNING_FILE)
    )


def describe_scorer(scorer: SentenceScorer) -> dict[str, Any]:
    """What a summary says of a sentence scorer's model."""
    from brain2text.decoding.llm import describe

    lm = getattr(scorer, "lm", None)
    record = describe(lm) if lm is not None else {"name": scorer.name}
    end = getattr(scorer, "end", None)
    return record if end is None else record | {"end": end}


def word_search(
    run_dir: Path | None,
    lm_dir: Path | None = None,
    wfst_dir: Path | None = None,
    rescorer: Rescorer | None = None,
    *,
    llm: SentenceScorer | None = None,
    rescoring: RescoreOptions | None = None,
    fusion: Callable[[WordDecoder], Any] | None = None,
    **given: Any,
) -> WordSearch:
    """The word search of an LM folder or a Kaldi graph. ``given``: beam options (None: not
    given); with ``run_dir`` the options ``lm tune`` wrote there are the defaults.

    ``llm``: a sentence scorer that rescores the n-best list (:class:`~brain2text.evaluation.
    rescoring.LlmRescorer`); its options are ``rescoring`` when given, else the ``rescoring``
    entry ``lm tune --llm`` wrote to ``RUN/lm_tuning.json`` for this LM folder and this LLM,
    else the defaults; the n-best size is then ``nbest`` when given, else the tuned one, else
    :data:`DEFAULT_LLM_NBEST` (the beam, when not given, widened to it). ``fusion``: wraps the
    beam decoder in one that brings an LM into the search itself (``decode(log_probs)`` ->
    n-best list)."""
    both_or_neither = "give an LM folder or a Kaldi graph folder, not both or neither"
    if wfst_dir is not None:
        if lm_dir is not None:
            raise DataError(both_or_neither)
        if llm is not None or fusion is not None:
            raise ConfigError(
                "--llm rescores the n-best of --lm (its acoustic and n-gram scores); "
                "a --wfst graph's hypotheses have no such split: use --lm"
            )
        graph = WfstDecoder(Path(wfst_dir))
        return WordSearch(
            graph,
            wfst=str(wfst_dir),
            options=asdict(graph.options),
            options_from="the Brain-to-Text '24 baseline's graph search settings",
            rescorer=rescorer,
        )
    if lm_dir is None:
        raise DataError(both_or_neither)
    lm = open_lm(Path(lm_dir))
    llm_record = rescoring_record = None
    if llm is not None:
        if rescorer is not None:
            raise ConfigError("word_search: give a rescorer or an llm, not both")
        chosen = choose_rescoring(run_dir, lm, llm.name, rescoring)
        rescorer = LlmRescorer(llm, chosen.options)
        llm_record = describe_scorer(llm)
    options, source = choose_options(run_dir, lm, **given)
    if llm is not None:
        first_pass = {k: v for k, v in chosen.first_pass.items() if given.get(k) is None}
        if first_pass:  # the n-gram weights lm tune chose for the LLM's first pass
            options = replace(
                options,
                lm_weight=first_pass.get("lm_weight", options.lm_weight),
                word_score=first_pass.get("word_score", options.word_score),
            )
            source += (
                " + the LLM's first pass ("
                + ", ".join(f"{k}={v:g}" for k, v in first_pass.items())
                + ")"
            )
        if given.get("nbest") is None:  # the LLM's n-best; the beam widened to hold it
            nbest = chosen.nbest or DEFAULT_LLM_NBEST
            if given.get("beam_size") is None and options.beam_size < nbest:
                options = replace(options, beam_size=nbest)
                source += f" + beam {nbest}"
            nbest = min(nbest, options.beam_size)
            options = replace(options, nbest=nbest)
            source += f" + nbest {nbest} for the LLM"
        rescoring_record = asdict(chosen.options) | {"nbest": options.nbest, "from": chosen.source}
    decoder = WordDecoder(lm.arpa, lm.spellings, options)
    dropped = sum(len(v) for v in decoder.dropped_homophones.values())
    return WordSearch(
        fusion(decoder) if fusion is not None else decoder,
        lm=str(lm.folder),
        options=asdict(options),
        options_from=source,
        dropped_homophones=dropped,
        rescorer=rescorer,
        llm=llm_record,
        rescoring=rescoring_record,
    )
