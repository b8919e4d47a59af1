"""What the training loop does at an evaluation and at a checkpoint, beside its per-batch
core: the run's objects (:class:`Trainee`), scoring the raw and EMA weights (PER, and WER with
``eval.word_decoding``), choosing ``best.pt``, the instability watch's warnings, and the resume
point ``last.pt``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import torch
from torch.optim.swa_utils import AveragedModel

from brain2text.config import RunConfig
from brain2text.distributed import Dist
from brain2text.evaluation.labels import split_references
from brain2text.evaluation.pipeline import score_words
from brain2text.evaluation.scoring import decode_split, score
from brain2text.evaluation.search import WordSearch, decode_words, word_search
from brain2text.model.factory import SpeechModel
from brain2text.runs import metric_keys as keys
from brain2text.runs.checkpoint import Checkpoint, save_checkpoint
from brain2text.runs.runlog import RunLog, SilentLog
from brain2text.training.rundata import RunData
from brain2text.training.state import (
    Best,
    Evaluation,
    LatestEval,
    LoopState,
    Weights,
    capture_rng,
)
from brain2text.training.watch import InstabilityWatch, WatchWarning


def build_watch(config: RunConfig) -> InstabilityWatch | None:
    wc = config.watch
    if not wc.enabled:
        return None
    ceiling = (
        wc.grad_norm_ceiling if wc.grad_norm_ceiling is not None else config.criteria.max_grad_norm
    )
    return InstabilityWatch(wc.trend_evals, ceiling, wc.min_rel_rise, wc.stop_after)


def log_warnings(log: RunLog | SilentLog, warnings: list[WatchWarning]) -> None:
    for w in warnings:
        log.info(f"WARNING step {w.step} (lr {w.lr:.3g}): {w.message}")
        log.metrics(
            {keys.STEP: w.step, keys.WARNING: w.kind, keys.MESSAGE: w.message, keys.LR: w.lr}
        )


@dataclass(frozen=True)
class Trainee:
    """The objects a run trains and saves, built once by :func:`_train_loop`."""

    config: RunConfig
    data: RunData
    model: SpeechModel
    ema: AveragedModel | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    watch: InstabilityWatch | None
    device: torch.device
    ranks: Dist
    out_dir: Path
    words: WordSearch | None  # eval.word_decoding's beam search, built once

    def weights_state(self, step: int, latest: LatestEval) -> Checkpoint:
        """What ``best.pt`` holds: the weights (and their EMA) with enough to evaluate and
        fine-tune them."""
        ema = self.ema
        return Checkpoint(
            step=step,
            model=self.model.state_dict(),
            config=self.config.to_dict(),
            days=list(self.data.dataset.days),
            features=self.data.dataset.feature_spec.to_dict(),
            evaluations=latest.checkpoint_entries(),
            ema=None if ema is None else ema.module.state_dict(),
            ema_n_averaged=None if ema is None else int(ema.n_averaged.item()),
        )


def build_word_decoder(config: RunConfig) -> WordSearch | None:
    """The beam search of ``eval.word_decoding`` (its LM folder checked before training)."""
    wd = config.eval.word_decoding
    if wd is None:
        return None
    return word_search(
        None,
        Path(wd.lm),
        beam_size=wd.beam_size,
        lm_weight=wd.lm_weight,
        word_score=wd.word_score,
    )


def evaluate_weights(
    t: Trainee, module: SpeechModel, step: int, weights: Weights, with_words: bool = False
) -> Evaluation:
    tc, data = t.config.train, t.data
    decoded = decode_split(
        module,
        data.eval_split,
        data.eval_idx,
        t.device,
        tc.eval_batch_size,
        tc.use_amp,
        tc.amp_dtype,
        t.ranks,
        keep_log_probs=with_words,
    )
    refs = split_references(data.dataset, data.eval_split, data.eval_idx, None)
    if refs is None:
        raise ValueError(f"{data.eval_name}: training evaluates on a labelled split")
    day_of = data.eval_split.day_index[data.eval_idx]
    summary = score(refs.ids, decoded, day_of, data.dataset.days)
    wer = None
    if with_words and t.words is not None:
        words = decode_words(t.words, decoded.emissions)
        wer = score_words(refs, words, day_of, data.dataset.days).wer.rate
    return Evaluation(step, data.eval_name, weights, summary, wer)


def evaluate_and_select(
    t: Trainee, step: int, lr: float, best: Best, log: RunLog | SilentLog
) -> tuple[Best, LatestEval]:
    """Score the raw (and EMA) weights, log them, write ``best.pt`` on improvement and let the
    watch judge the trend; returns the new best (with ``stopped_early`` set when the watch
    stops the run) and the evaluations just made."""
    name, tc = t.data.eval_name, t.config.train
    wd = t.config.eval.word_decoding
    n_eval = (step + 1) // tc.eval_every  # 1 at the first evaluation (the last may be off-grid)
    with_words = wd is not None and (n_eval % wd.every == 0 or step + 1 == tc.n_batch)
    raw = evaluate_weights(t, t.model, step, "raw", with_words)
    row = {
        keys.STEP: step,
        keys.loss(name): raw.score.loss,
        keys.per(name): raw.score.per,
        **{keys.per_day(name, d): v for d, v in raw.score.per_day.items()},
    }
    message = f"step {step}: {name} loss {raw.score.loss:.4f} PER {raw.score.per:.4f}"
    if raw.wer is not None:
        row[keys.wer(name)] = raw.wer
        message += f" WER {raw.wer:.4f}"
    latest, chosen = LatestEval(raw=raw), raw
    if t.ema is not None:
        ema = evaluate_weights(t, cast(SpeechModel, t.ema.module), step, "ema")
        row |= {keys.loss_ema(name): ema.score.loss, keys.per_ema(name): ema.score.per}
        message += f", EMA loss {ema.score.loss:.4f} PER {ema.score.per:.4f}"
        latest = LatestEval(raw=raw, ema=ema)
        if t.config.train.select_on_ema:
            chosen = ema
    log.metrics(row)
    improved = best.improved_by(chosen)
    log.info(f"{message}{' (best)' if improved else ''} lr {lr:.3g}")
    if improved:
        best = Best(chosen, metric=best.metric)
        if t.ranks.is_main:
            save_checkpoint(t.out_dir / "checkpoints" / "best.pt", t.weights_state(step, latest))
    if t.watch:
        log_warnings(log, t.watch.on_eval(step, lr, raw.score.loss, raw.score.per))
        if t.watch.stop_reason:  # after best.pt: it predates the trend
            log.info(
                f"stopping early at step {step}: {t.watch.stop_reason}; best "
                f"checkpoint is from step {best.step}"
            )
            best = best.stop(step, t.watch.stop_reason)
    return best, latest


def save_resume_point(t: Trainee, step: int, state: LoopState, generator: torch.Generator) -> None:
    """``last.pt``: the weights, every state and every rank's random streams at ``step``."""
    rngs = t.ranks.gather(capture_rng(generator, t.device))
    if not t.ranks.is_main:
        return
    resume_point = replace(
        t.weights_state(step, state.latest),
        optimizer=t.optimizer.state_dict(),
        scheduler=t.scheduler.state_dict(),
        resume=state.to_resume(t.scaler, t.watch, rngs),
    )
    save_checkpoint(t.out_dir / "checkpoints" / "last.pt", resume_point)
