"""``brain2text lm tune RUN --lm LM_DIR``: the LM weight and word score, chosen on validation.

The run's validation split (the one training selected its checkpoint on; never the test split)
is decoded once by the network; every point of the grid then runs the word beam search on the
same emissions. The point of lowest validation WER (ties: the lower PER, then the earlier grid
point) is written to ``RUN/lm_tuning.json`` with the whole table, and ``evaluate --lm`` uses it
when no weights are given.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from brain2text.atomic import atomic_write_text
from brain2text.decoding.beam import (
    DEFAULT_LM_WEIGHTS,
    DEFAULT_WORD_SCORES,
    BeamOptions,
    WordDecoder,
)
from brain2text.errors import DataError
from brain2text.evaluation.evaluate import decode_target, load_target
from brain2text.evaluation.metrics import error_rate
from brain2text.evaluation.search import TUNING_FILE, decode_words, word_search
from brain2text.evaluation.words import normalize_words


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
) -> TuningResult:
    search = word_search(None, Path(lm_dir), beam_size=beam_size)  # the trie and LM, built once
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
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return TuningResult(best, options, table, len(indices), path)


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
    lines.append(f"written to {result.path} (validation split, {result.n_sentences} sentences)")
    return "\n".join(lines)
