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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.decoding.beam import BeamOptions, WordDecoder, WordHypothesis
from brain2text.decoding.greedy import collapse
from brain2text.decoding.lm import LanguageModel, open_lm
from brain2text.decoding.wfst import WfstDecoder
from brain2text.errors import DataError
from brain2text.evaluation.summary import EvalSummary

TUNING_FILE = "lm_tuning.json"

# (n-best list best first, the trial's (T', 41) log-probabilities) -> the n-best list reordered
Rescorer = Callable[[list[WordHypothesis], np.ndarray], list[WordHypothesis]]


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
    nbests, seconds = [], []
    for log_probs in emissions:
        start = time.perf_counter()
        nbests.append(search.nbest(log_probs))
        seconds.append(time.perf_counter() - start)
    return DecodedWords(nbests, seconds)


def sentence_of(hyps: Sequence[WordHypothesis]) -> str:
    return " ".join(hyps[0].words) if hyps else ""


def tuned_options(run_dir: Path, lm: LanguageModel) -> BeamOptions | None:
    """The options ``lm tune`` chose for this LM folder, or None."""
    path = run_dir / TUNING_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    if record.get("lm") != str(lm.folder.resolve()):
        return None
    return BeamOptions(**record["options"])


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


def word_search(
    run_dir: Path | None,
    lm_dir: Path | None = None,
    wfst_dir: Path | None = None,
    rescorer: Rescorer | None = None,
    **given: Any,
) -> WordSearch:
    """The word search of an LM folder or a Kaldi graph. ``given``: beam options (None: not
    given); with ``run_dir`` the options ``lm tune`` wrote there are the defaults."""
    both_or_neither = "give an LM folder or a Kaldi graph folder, not both or neither"
    if wfst_dir is not None:
        if lm_dir is not None:
            raise DataError(both_or_neither)
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
    options, source = choose_options(run_dir, lm, **given)
    decoder = WordDecoder(lm.arpa, lm.spellings, options)
    return WordSearch(
        decoder,
        lm=str(lm.folder),
        options=asdict(options),
        options_from=source,
        dropped_homophones=sum(len(v) for v in decoder.dropped_homophones.values()),
        rescorer=rescorer,
    )
