"""``brain2text lm tune RUN --lm LM_DIR``: the LM weight and word score, chosen on validation.

The run's validation split (the one training selected its checkpoint on; never the test split)
is decoded once by the network; every point of the grid then runs the word beam search on the
same emissions. The point of lowest validation WER (ties: the lower PER, then the earlier grid
point) is written to ``RUN/lm_tuning.json`` with the whole table, and ``evaluate --lm`` uses it
when no weights are given.

Before tuning, the validation references are checked against the sentence hashes ``lm build``
records in lm.json: validation sentences in the LM's corpus make the grid trust the LM too much
(one line printed, and ``leak_check`` in lm_tuning.json). With an LLM (``--llm``) the n-best
rescoring is tuned after the grid on the same emissions
(:mod:`brain2text.evaluation.llm_tuning`) and written under ``rescoring``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brain2text.atomic import atomic_write_text
from brain2text.decoding.beam import (
    DEFAULT_LM_WEIGHTS,
    DEFAULT_WORD_SCORES,
    BeamOptions,
    WordDecoder,
)
from brain2text.decoding.llm import SentenceScorer, as_scorer
from brain2text.decoding.lm import INFO_FILE, clean_words, corpus_hashes, sentence_hash
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.evaluate import decode_target, load_target
from brain2text.evaluation.metrics import error_rate
from brain2text.evaluation.search import TUNING_FILE, decode_words, word_search
from brain2text.evaluation.words import normalize_words

if TYPE_CHECKING:
    from brain2text.evaluation.llm_tuning import RescoringTuning


# --- the leak check -----------------------------------------------------------------------


@dataclass(frozen=True)
class LeakCheck:
    """How many validation sentences are in the LM's corpus (None: lm.json keeps no hashes)."""

    n_validation: int
    n_in_corpus: int | None
    message: str | None  # the warning (or why no check was made); None: no leak

    def record(self) -> dict[str, Any]:
        return asdict(self)


def leak_check(lm_info: dict, lm_dir: Path, references: Sequence[str]) -> LeakCheck:
    """Validation ``references`` against the sentence hashes of an LM folder's lm.json."""
    hashes = corpus_hashes(lm_info)
    cleaned = [ws for text in references if (ws := clean_words(text))]
    if hashes is None:
        return LeakCheck(
            len(cleaned),
            None,
            f"{lm_dir}/lm.json keeps no corpus sentence hashes (an LM folder from an older "
            "lm build): whether validation sentences are in its corpus could not be checked; "
            "rebuild it with lm build to check",
        )
    found = sum(sentence_hash(ws) in hashes for ws in cleaned)
    if found == 0:
        return LeakCheck(len(cleaned), 0, None)
    return LeakCheck(
        len(cleaned),
        found,
        f"{found} of {len(cleaned)} validation sentences are in {lm_dir}'s corpus: the weights "
        "it picks will trust the LM too much; rebuild it with lm build --exclude-split val "
        "--run RUN_DIR",
    )


# --- the n-gram grid ---------------------------------------------------------------------


@dataclass(frozen=True)
class TuningPoint:
    lm_weight: float
    word_score: float
    wer: float
    per: float
    decode_ms_per_sentence: float


@dataclass(frozen=True)
class TuningResult:
    best: TuningPoint
    options: BeamOptions
    table: list[TuningPoint]
    n_sentences: int
    path: Path  # lm_tuning.json
    leak: LeakCheck | None = None
    rescoring: RescoringTuning | None = None


def tune_lm(
    run_dir: Path,
    lm_dir: Path,
    *,
    lm_weights=DEFAULT_LM_WEIGHTS,
    word_scores=DEFAULT_WORD_SCORES,
    beam_size: int | None = None,
    checkpoint: str = "best",
    weights: str = "raw",
    data_path: Path | None = None,
    device_name: str = "auto",
    llm: str | Path | SentenceScorer | None = None,
    llm_nbest: int | None = None,
    alphas: Sequence[float] | None = None,
    acoustic_scales: Sequence[float] | None = None,
    gates: Sequence[float | None] | None = None,
    llm_dtype: str | None = None,
    llm_batch_size: int = 32,
    first_pass_weights: Sequence[float] | None = None,
) -> TuningResult:
    """The grid on the validation split (see the module docstring). ``llm``: a model spec
    (``smollm2-135m``, a folder, a ``.gguf``) or a loaded SentenceScorer, whose rescoring is
    then tuned too over ``alphas`` x ``acoustic_scales`` x ``gates`` with ``llm_nbest``
    hypotheses (None: the defaults of :mod:`~brain2text.evaluation.llm_tuning`), on the
    n-best lists of the n-gram's best point or, with ``first_pass_weights``, of each of
    these LM weights of the grid (each at its best word score), the one the LLM does best
    with written as the first pass for the LLM. The leak warning is printed as soon as it is
    known."""
    if first_pass_weights is not None:
        grid = {float(v) for v in lm_weights}
        outside = [w for w in first_pass_weights if float(w) not in grid]
        if outside or not first_pass_weights:
            raise ConfigError(
                f"--first-pass-weights {','.join(f'{w:g}' for w in first_pass_weights)}: "
                "each must be one of --lm-weights (its word score comes from that grid)"
            )
        if llm is None:
            raise ConfigError("--first-pass-weights chooses the first pass for --llm: give --llm")
    search = word_search(None, Path(lm_dir), beam_size=beam_size)  # the trie and LM, built once
    lm_info = json.loads((Path(lm_dir) / INFO_FILE).read_text(encoding="utf-8"))
    if not isinstance(search.decoder, WordDecoder):
        raise DataError(f"{lm_dir}: lm tune tunes the beam search of an LM folder")
    searcher, base = search.decoder, search.decoder.options
    target = load_target(run_dir, "val", checkpoint, weights, data_path, device_name)
    if len(target.indices) == 0:
        raise DataError(
            f"{run_dir}: its validation split is empty, so nothing can be tuned on "
            "(lm tune never uses the test split)"
        )
    references = target.trials(None).references
    if references is None:
        raise DataError(f"{run_dir}: its validation split is unlabelled")
    leak = leak_check(lm_info, Path(lm_dir), references.texts or [])
    if leak.message is not None:
        print(f"warning: {leak.message}", flush=True)
    scorer = as_scorer(llm, device=device_name, dtype=llm_dtype, batch_size=llm_batch_size)
    decoded = decode_target(target, keep_log_probs=True)
    indices = target.indices
    ref_words = [normalize_words(t) for t in references.texts or []]
    table = []
    for lm_weight, word_score in itertools.product(lm_weights, word_scores):
        options = replace(base, lm_weight=float(lm_weight), word_score=float(word_score))
        point = replace(search, decoder=searcher.with_options(options))
        start = time.perf_counter()
        words = decode_words(point, decoded.emissions)
        ms = 1000 * (time.perf_counter() - start) / max(len(words.nbests), 1)
        wer = error_rate(ref_words, [normalize_words(h) for h in words.sentences])
        per = error_rate(references.ids, words.phoneme_ids)
        table.append(TuningPoint(float(lm_weight), float(word_score), wer.rate, per.rate, ms))
    best = min(table, key=lambda p: (p.wer, p.per))  # min keeps the first of equal points
    options = replace(base, lm_weight=best.lm_weight, word_score=best.word_score)
    rescoring = None
    if scorer is not None:
        from brain2text.evaluation.llm_tuning import tune_first_pass, tune_rescoring

        grids = {"alphas": alphas, "acoustic_scales": acoustic_scales, "gates": gates}
        given: dict[str, Any] = {k: v for k, v in grids.items() if v is not None}
        if llm_nbest is not None:
            given["nbest"] = llm_nbest
        if first_pass_weights is None:
            rescoring = tune_rescoring(
                search, options, decoded.emissions, ref_words, scorer, **given
            )
        else:
            passes = [options] + [
                best_at(table, base, float(w))
                for w in dict.fromkeys(first_pass_weights)
                if float(w) != best.lm_weight
            ]
            rescoring = tune_first_pass(
                search, passes, decoded.emissions, ref_words, scorer, **given
            )
    path = run_dir / TUNING_FILE
    record = {
        "lm": str(Path(search.lm or lm_dir).resolve()),
        "split": "val",
        "n_sentences": len(indices),
        "checkpoint": str(target.checkpoint),
        "weights": weights,
        "options": asdict(options),
        "best": asdict(best),
        "table": [asdict(p) for p in table],
        "leak_check": leak.record(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if rescoring is not None:
        record["rescoring"] = rescoring.record()
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return TuningResult(best, options, table, len(indices), path, leak, rescoring)


def best_at(table: Sequence[TuningPoint], base: BeamOptions, lm_weight: float) -> BeamOptions:
    """``base`` at ``lm_weight`` and the word score that did best with it in the grid (ties:
    the lower PER, then the earlier point)."""
    point = min((p for p in table if p.lm_weight == lm_weight), key=lambda p: (p.wer, p.per))
    return replace(base, lm_weight=point.lm_weight, word_score=point.word_score)


def tuning_table(result: TuningResult) -> str:
    lines = [
        f"{'lm_weight':>9}  {'word_score':>10}  {'val WER':>8}  {'val PER':>8}  {'ms/sent':>7}"
    ]
    for p in result.table:
        mark = "  <- best" if p == result.best else ""
        lines.append(
            f"{p.lm_weight:9.2f}  {p.word_score:10.2f}  {p.wer:8.4f}  {p.per:8.4f}  "
            f"{p.decode_ms_per_sentence:7.1f}{mark}"
        )
    if result.rescoring is not None:
        from brain2text.evaluation.llm_tuning import rescoring_table

        lines.append(rescoring_table(result.rescoring))
    lines.append(f"written to {result.path} (validation split, {result.n_sentences} sentences)")
    return "\n".join(lines)
