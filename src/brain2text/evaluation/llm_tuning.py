"""``lm tune --llm``: the LLM rescoring's alpha, acoustic scale and gate, chosen on validation.

After the n-gram grid, the validation split is decoded once more at the best n-gram point with
an n-best list; every distinct sentence of those lists is scored once by the LLM. Each point of
alpha x acoustic_scale x gate then only recomputes
:func:`~brain2text.evaluation.rescoring.rescore_totals` in numpy on the saved scores (no second
decoding, no second LLM pass): each trial's pick is its highest total (ties: the first-pass
order), each hypothesis's word errors are counted once. The point of lowest validation WER wins
(ties: the earlier point).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from brain2text.decoding.beam import BeamOptions, WordDecoder, WordHypothesis
from brain2text.errors import ConfigError
from brain2text.evaluation.metrics import edit_distance
from brain2text.evaluation.rescoring import RescoreOptions, distinct, is_gated, rescore_totals
from brain2text.evaluation.search import WordSearch, decode_words
from brain2text.evaluation.words import normalize_words

if TYPE_CHECKING:
    from brain2text.decoding.llm import SentenceScorer

DEFAULT_ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_ACOUSTIC_SCALES = (0.1, 0.25, 0.5, 0.75, 1.0)
# n-gram natural-log score per word below which the LLM is skipped (None: never skipped)
DEFAULT_GATES: tuple[float | None, ...] = (None, -9.0, -7.5, -6.0)
DEFAULT_TUNING_NBEST = 50


# --- the rescoring grid -------------------------------------------------------------------


@dataclass(frozen=True)
class RescoringPoint:
    alpha: float
    acoustic_scale: float
    gate: float | None
    wer: float
    n_gated: int  # trials where the gate kept the LLM out


@dataclass(frozen=True)
class FirstPass:
    """One first pass tried for the LLM: its n-gram weights and the validation WER (and n-best
    oracle) of the rescoring tuned on its n-best lists."""

    lm_weight: float
    word_score: float
    wer: float
    oracle_wer: float


@dataclass(frozen=True)
class RescoringTuning:
    """The grid, its best point, and the first pass's and the n-best oracle's WER."""

    llm: str
    nbest: int
    best: RescoringPoint
    table: list[RescoringPoint]
    wer_first_pass: float
    oracle_wer: float
    n_sentences: int
    n_scored: int  # distinct sentences the LLM scored
    first_pass: FirstPass | None = None  # chosen among first_passes (None: none were tried)
    first_passes: tuple[FirstPass, ...] = ()

    @property
    def options(self) -> RescoreOptions:
        return RescoreOptions(self.best.alpha, self.best.acoustic_scale, self.best.gate)

    def record(self) -> dict[str, Any]:
        """The ``rescoring`` entry of lm_tuning.json."""
        return {
            "llm": self.llm,
            "alpha": self.best.alpha,
            "acoustic_scale": self.best.acoustic_scale,
            "gate": self.best.gate,
            "nbest": self.nbest,
            "table": [asdict(p) for p in self.table],
            "wer_first_pass": self.wer_first_pass,
            "wer": self.best.wer,
            "oracle_wer": self.oracle_wer,
            "n_sentences": self.n_sentences,
            "n_scored": self.n_scored,
        } | (
            {}
            if self.first_pass is None
            else {
                "lm_weight": self.first_pass.lm_weight,
                "word_score": self.first_pass.word_score,
                "first_passes": [asdict(f) for f in self.first_passes],
            }
        )


@dataclass(frozen=True)
class ScoredNbest:
    """Each trial's n-best scores as arrays (first-pass order) and each hypothesis's word
    errors against the reference."""

    am: list[np.ndarray]
    ngram: list[np.ndarray]
    llm: list[np.ndarray]
    n_words: list[np.ndarray]
    errors: list[np.ndarray]
    n_reference_of: list[int]  # each trial's reference words
    n_scored: int

    @property
    def n_reference(self) -> int:
        return sum(self.n_reference_of)


def score_nbests(
    nbests: Sequence[Sequence[WordHypothesis]], ref_words: Sequence[Sequence[str]], scorer: Any
) -> ScoredNbest:
    """Score every distinct sentence of ``nbests`` once with ``scorer`` (anything with a
    SentenceScorer's ``score``). Each list keeps, as the rescorer does, the first-pass best
    hypothesis of each sentence, in first-pass order."""
    lists = [distinct(sorted(hyps, key=lambda h: -h.score)) for hyps in nbests]
    sentences = list(dict.fromkeys(" ".join(h.words) for hyps in lists for h in hyps))
    values = dict(zip(sentences, scorer.score(sentences).tolist(), strict=True))
    am, ngram, llm, n_words, errors = [], [], [], [], []
    for hyps, ref in zip(lists, ref_words, strict=True):
        am.append(np.array([h.am for h in hyps], dtype=np.float64))
        ngram.append(np.array([h.ngram for h in hyps], dtype=np.float64))
        llm.append(np.array([values[" ".join(h.words)] for h in hyps], dtype=np.float64))
        n_words.append(np.array([len(h.words) for h in hyps], dtype=np.float64))
        errors.append(
            np.array([edit_distance(ref, normalize_words(" ".join(h.words))) for h in hyps])
        )
    n_reference_of = [len(r) for r in ref_words]
    return ScoredNbest(am, ngram, llm, n_words, errors, n_reference_of, len(sentences))


def picks(scored: ScoredNbest, options: RescoreOptions) -> list[int]:
    """Each trial's chosen hypothesis under ``options`` (-1: an empty n-best list)."""
    chosen = []
    for am, ngram, llm, n_words in zip(
        scored.am, scored.ngram, scored.llm, scored.n_words, strict=True
    ):
        if len(am) == 0:
            chosen.append(-1)
            continue
        totals = rescore_totals(am, ngram, llm, n_words, options)
        chosen.append(int(np.argmax(totals)))  # argmax keeps the first of equal totals
    return chosen


def _wer(scored: ScoredNbest, chosen: Sequence[int], empty_errors: Sequence[int]) -> float:
    total = sum(
        int(errs[k]) if k >= 0 else int(e)
        for errs, k, e in zip(scored.errors, chosen, empty_errors, strict=True)
    )
    return total / max(scored.n_reference, 1)


def _gated(scored: ScoredNbest, gate: float | None) -> int:
    if gate is None:
        return 0
    return sum(
        bool(len(ng)) and is_gated(float(ng[0]), int(nw[0]), gate)
        for ng, nw in zip(scored.ngram, scored.n_words, strict=True)
    )


def tune_rescoring(
    search: WordSearch,
    options: BeamOptions,
    emissions: Sequence[np.ndarray],
    ref_words: Sequence[Sequence[str]],
    scorer: SentenceScorer,
    *,
    nbest: int = DEFAULT_TUNING_NBEST,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    acoustic_scales: Sequence[float] = DEFAULT_ACOUSTIC_SCALES,
    gates: Sequence[float | None] = DEFAULT_GATES,
) -> RescoringTuning:
    """Decode ``emissions`` once at ``options`` with ``nbest`` hypotheses, score them with
    ``scorer`` (a SentenceScorer) and search the grid (see the module docstring)."""
    if nbest < 1:
        raise ConfigError(f"--nbest {nbest}: must be at least 1")
    if not alphas or not acoustic_scales or not gates:
        raise ConfigError("--alphas, --acoustic-scales and --llm-gates need a value each")
    if not isinstance(search.decoder, WordDecoder):
        raise ConfigError("--llm: lm tune rescores the beam search of an LM folder")
    decoder = search.decoder.with_options(replace(options, nbest=int(nbest)))
    words = decode_words(replace(search, decoder=decoder, rescorer=None), emissions)
    scored = score_nbests(words.nbests, ref_words, scorer)
    return search_grid(scored, scorer.name, int(nbest), alphas, acoustic_scales, gates)


def tune_first_pass(
    search: WordSearch,
    first_passes: Sequence[BeamOptions],
    emissions: Sequence[np.ndarray],
    ref_words: Sequence[Sequence[str]],
    scorer: SentenceScorer,
    **grid: Any,
) -> RescoringTuning:
    """:func:`tune_rescoring` at each of ``first_passes`` (the n-gram's best first): the first
    pass whose rescored validation WER is lowest wins (ties: the earlier one). A lower n-gram
    weight than the n-gram's own best leaves more of the sentence to the LLM; the scorer's
    cache scores a sentence the passes share once."""
    passes = list(first_passes)
    if not passes:
        raise ConfigError("tune_first_pass: give at least one first pass")
    tunings = [tune_rescoring(search, o, emissions, ref_words, scorer, **grid) for o in passes]
    tried = tuple(
        FirstPass(o.lm_weight, o.word_score, t.best.wer, t.oracle_wer)
        for o, t in zip(passes, tunings, strict=True)
    )
    k = min(range(len(tunings)), key=lambda i: tunings[i].best.wer)
    return replace(tunings[k], first_pass=tried[k], first_passes=tried)


def search_grid(
    scored: ScoredNbest,
    llm: str,
    nbest: int,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    acoustic_scales: Sequence[float] = DEFAULT_ACOUSTIC_SCALES,
    gates: Sequence[float | None] = DEFAULT_GATES,
) -> RescoringTuning:
    """Every point of alpha x acoustic_scale x gate on saved scores; the lowest WER wins
    (ties: the earlier point). An empty n-best list decodes to "" (all deletions)."""
    empty = [int(n) for n in scored.n_reference_of]
    first = _wer(scored, [0 if len(e) else -1 for e in scored.errors], empty)
    table = []
    for alpha, scale, gate in itertools.product(alphas, acoustic_scales, gates):
        point = RescoreOptions(float(alpha), float(scale), None if gate is None else float(gate))
        wer = _wer(scored, picks(scored, point), empty)
        table.append(
            RescoringPoint(point.alpha, point.acoustic_scale, point.gate, wer, _gated(scored, gate))
        )
    best = min(table, key=lambda p: p.wer)  # min keeps the first of equal points
    oracle = sum(
        int(errs.min()) if len(errs) else e for errs, e in zip(scored.errors, empty, strict=True)
    ) / max(scored.n_reference, 1)
    return RescoringTuning(
        llm, nbest, best, table, first, oracle, len(scored.errors), scored.n_scored
    )


def rescoring_table(tuning: RescoringTuning) -> str:
    """The grid as ``lm tune`` prints it."""
    lines = [
        f"LLM rescoring with {tuning.llm}: n-best {tuning.nbest}, {tuning.n_scored} distinct "
        f"sentences scored; first-pass val WER {tuning.wer_first_pass:.4f}, n-best oracle "
        f"{tuning.oracle_wer:.4f}",
        f"{'alpha':>5}  {'ac_scale':>8}  {'gate':>6}  {'val WER':>8}  {'gated':>5}",
    ]
    for p in tuning.table:
        mark = "  <- best" if p == tuning.best else ""
        gate = "none" if p.gate is None else f"{p.gate:.2f}"
        lines.append(
            f"{p.alpha:5.2f}  {p.acoustic_scale:8.3f}  {gate:>6}  {p.wer:8.4f}  "
            f"{p.n_gated:5d}{mark}"
        )
    if tuning.first_passes:
        lines.append("first passes tried for the LLM (the grid above is the chosen one's)")
        lines.append(f"{'lm_weight':>9}  {'word_score':>10}  {'val WER':>8}  {'oracle':>8}")
        for f in tuning.first_passes:
            mark = "  <- chosen" if f == tuning.first_pass else ""
            lines.append(
                f"{f.lm_weight:9.2f}  {f.word_score:10.2f}  {f.wer:8.4f}  {f.oracle_wer:8.4f}{mark}"
            )
    return "\n".join(lines)
