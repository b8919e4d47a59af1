"""Training: one function, :func:`_train_loop`, that reads top to bottom (what it does at an
evaluation and at a checkpoint is in :mod:`brain2text.training.evaluating`).

    data -> validation carving and trial checks -> model, optimizer, schedule -> loop over
    batches (augment, forward, CTC, backward, clip, step, schedule) -> every ``eval_every``
    batches: greedy decoding, PER, best checkpoint, instability watch -> resume point.

Each batch comes from :func:`~brain2text.training.rundata.train_loader` and is trained by
:func:`~brain2text.training.step.train_step`, the step ``lr-find`` and ``adapt`` train with too;
what the loop carries from batch to batch is one :class:`~brain2text.training.state.LoopState`.
The run trains under :func:`~brain2text.training.step.cpu_mode` (``train.threads``, subnormal
floats flushed with ``train.flush_denormals``): run.json's ``cpu`` entry records it, and whether
the flushing held in every thread.

A step whose loss or gradient is NaN/Inf is reported at that step, skipped (no optimizer
update) and counted; after ``train.max_nonfinite_in_a_row`` such steps in a row the run stops
with an error. The schedule advances every batch (``plateau``: every evaluation), skipped or
not, so the LR stays a function of the batch number.

The instability watch (``watch`` section, :mod:`brain2text.training.watch`) sees every batch
and every evaluation; each warning is logged at once (``WARNING step N (lr X): ...``) and
written to metrics.jsonl as its own row ``{"step", "warning": kind, "message", "lr"}``. With
``watch.stop_after`` the run stops after that many evaluations in a row with a trend warning:
its status is then "stopped early" and run.json holds ``stopped_early`` (step, reason, best
step).

With ``train.ema_decay`` an EMA of the weights is updated after every optimizer step that was
not skipped and scored at every evaluation beside the raw weights (``<split>/loss_ema``,
``<split>/per_ema``); ``best.pt`` is chosen on the raw PER unless ``train.select_on_ema``.
With ``eval.word_decoding`` every N-th evaluation also decodes words with the LM and logs
``<split>/wer``; ``train.select_on: wer`` chooses ``best.pt`` on it.

``checkpoints/best.pt`` holds what evaluating and fine-tuning need (config, days, weights, EMA
weights, its evaluation); ``checkpoints/last.pt`` holds everything a resume needs besides
(optimizer, schedule, scaler, watch, counters, every random stream). ``last.pt`` is written
once everything of its step is logged: at every evaluation, every ``train.checkpoint_every``
batches, and when SIGTERM or SIGUSR1 asks the run to stop (:mod:`brain2text.training.interrupt`).
:func:`resume` continues from it exactly as the run would have gone on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm import tqdm

from brain2text.atomic import atomic_write_text
from brain2text.config import RunConfig, TrainConfig, to_yaml
from brain2text.distributed import Dist, session
from brain2text.errors import ConfigError, TrainingError
from brain2text.model.factory import new_model
from brain2text.model.gru import count_parameters, describe_size
from brain2text.runs import metric_keys as keys
from brain2text.runs import provenance
from brain2text.runs.checkpoint import Checkpoint
from brain2text.runs.folder import (
    Heartbeat,
    prepare_run_dir,
    process_facts,
    read_record,
    stamp,
    write_run_record,
)
from brain2text.runs.runlog import RunLog, SilentLog, truncate_metrics
from brain2text.training.evaluating import (
    Trainee,
    build_watch,
    build_word_decoder,
    evaluate_and_select,
    log_warnings,
    save_resume_point,
)
from brain2text.training.interrupt import StopRequest
from brain2text.training.optim import build_optimizer, build_scheduler, steps_per_batch
from brain2text.training.rundata import RunData, load_run_data, train_loader
from brain2text.training.state import (
    Best,
    Counters,
    Evaluation,
    LoopState,
    read_resume_point,
    restore_state,
)
from brain2text.training.step import (
    CpuMode,
    Learner,
    StepOptions,
    build_ema,
    build_network,
    build_scaler,
    cpu_mode,
    seed_everything,
    train_step,
)

FINISHED, STOPPED_EARLY, INTERRUPTED, FAILED = "finished", "stopped early", "interrupted", "failed"
PRUNED = "pruned"  # stopped by its caller's on_evaluation (a sweep's pruner)

# Called after every evaluation with the evaluation best.pt is chosen from (the EMA's with
# train.select_on_ema); True stops the run there as "pruned" (last.pt is written first).
OnEvaluation = Callable[[Evaluation], bool]


@dataclass(frozen=True)
class RunOutcome:
    """How a call of :func:`train` or :func:`resume` ended."""

    status: str  # FINISHED, STOPPED_EARLY, INTERRUPTED or PRUNED
    best: Best
    last_step: int  # the last batch trained (and saved in last.pt when interrupted)
    signal: str | None = None  # the signal that interrupted the run


def train(
    config: RunConfig,
    out_dir: Path,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    on_evaluation: OnEvaluation | None = None,
) -> RunOutcome:
    """Train a run. Data problems are found before the run folder is touched."""
    out_dir = Path(out_dir)
    with (
        cpu_mode(config.train) as cpu,
        session(config.train.device, config.train.batch_size) as (ranks, device),
    ):
        data = load_run_data(config)
        if ranks.is_main:
            prepare_run_dir(out_dir, overwrite)
            atomic_write_text(out_dir / "config.yaml", to_yaml(config))
        ranks.barrier()
        return _run(config, data, out_dir, device, ranks, cpu, quiet, None, on_evaluation)


def resume(
    run_dir: Path,
    *,
    quiet: bool = False,
    expected: RunConfig | None = None,
    on_evaluation: OnEvaluation | None = None,
) -> RunOutcome:
    """Continue a run from ``checkpoints/last.pt`` with the config stored in it: metrics.jsonl
    is cut back to the checkpoint's step, TensorBoard events after it are purged, and training
    goes on from the next batch with every state (weights, optimizer, schedule, scaler, EMA,
    RNGs, watch, best) as it was, so the run ends as it would have uninterrupted."""
    run_dir = Path(run_dir)
    payload, config = read_resume_point(run_dir, expected)
    step = payload.step
    with (
        cpu_mode(config.train) as cpu,
        session(config.train.device, config.train.batch_size) as (ranks, device),
    ):
        data = load_run_data(config)
        if ranks.is_main:
            truncate_metrics(run_dir, step)  # everything after the checkpoint is replayed
        ranks.barrier()
        return _run(config, data, run_dir, device, ranks, cpu, quiet, payload, on_evaluation)


def _run(
    config: RunConfig,
    data: RunData,
    out_dir: Path,
    device: torch.device,
    ranks: Dist,
    cpu: CpuMode,
    quiet: bool,
    resume: Checkpoint | None,
    on_evaluation: OnEvaluation | None,
) -> RunOutcome:
    """The run folder's record around the loop: status, timing, the CPU mode, the log."""
    if not ranks.is_main:  # rank 0 alone writes the run folder
        with StopRequest() as stop:
            return _train_loop(
                config, data, out_dir, device, ranks, SilentLog(), True, resume, stop, on_evaluation
            )
    started = time.time()
    timing = lambda: {"started": stamp(started), "wall_s": round(time.time() - started, 1)}  # noqa: E731
    base = {
        "name": config.name,
        "parent": config.parent,
        **provenance.collect(device, Path(config.data.path), config.train.seed),
        "process": process_facts(),
        "cpu": cpu.to_dict(),
    }
    if ranks.enabled:
        base["processes"] = {"world_size": ranks.world_size, "backend": ranks.backend}
    if resume is not None:
        resumed = (read_record(out_dir) or {}).get("resumed_from", [])
        base["resumed_from"] = [*resumed, {"step": resume.step, **timing()}]
    write_run_record(out_dir, base, "running", timing())
    log = RunLog(out_dir, quiet=quiet, purge_step=None if resume is None else resume.step + 1)
    if resume is not None:
        log.info(f"resumed from step {resume.step} ({out_dir / 'checkpoints' / 'last.pt'})")
    else:
        for note in data.notes:
            log.info(note)
        for s in data.skipped:
            log.info(f"skipped {s.where}: {s.reason}")
    try:
        with Heartbeat(out_dir), StopRequest() as stop:
            outcome = _train_loop(
                config, data, out_dir, device, ranks, log, quiet, resume, stop, on_evaluation
            )
    except BaseException as exc:
        status = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else FAILED
        write_run_record(out_dir, base, status, {**timing(), "error": str(exc)[:500]})
        log.info(f"run {status}: {exc}")
        log.close()
        raise
    best, extra = outcome.best, {}
    if best.evaluation is not None:
        extra["best"] = {"per": best.per, "step": best.step, "split": best.evaluation.split}
        if best.evaluation.wer is not None:
            extra["best"] |= {"wer": best.evaluation.wer, "selected_on": best.metric}
    if best.stopped_early is not None:
        extra["stopped_early"] = best.stopped_early.to_dict()
    if outcome.status == INTERRUPTED:
        extra["interrupted"] = {"step": outcome.last_step, "signal": outcome.signal}
        log.info(
            f"interrupted by {outcome.signal} after step {outcome.last_step}: "
            f"{out_dir / 'checkpoints' / 'last.pt'} holds it; continue with "
            f"brain2text train --resume {out_dir}"
        )
    elif outcome.status == PRUNED:
        extra["pruned"] = {"step": outcome.last_step}
        log.info(
            f"pruned after the evaluation at step {outcome.last_step}: its PER lags the "
            f"other runs' at that step (best {best.per:.4f} at step {best.step})"
        )
    elif best.evaluation is not None:
        log.info(
            f"done: best {best.evaluation.split} PER {best.per:.4f} at step {best.step}; "
            f"checkpoints in {out_dir / 'checkpoints'}"
        )
    write_run_record(out_dir, base, outcome.status, {**timing(), **extra})
    log.close()
    return outcome


def _train_loop(
    config: RunConfig,
    data: RunData,
    out_dir: Path,
    device: torch.device,
    ranks: Dist,
    log: RunLog | SilentLog,
    quiet: bool,
    resume: Checkpoint | None,
    stop: StopRequest,
    on_evaluation: OnEvaluation | None = None,
) -> RunOutcome:
    tc = config.train
    share = tc.batch_size // ranks.world_size
    if share % tc.grad_accum:
        raise ConfigError(
            f"train.batch_size={tc.batch_size} over {ranks.world_size} processes "
            f"gives {share} trials each, which train.grad_accum={tc.grad_accum} "
            "cannot cut into equal micro-batches"
        )
    generator = seed_everything(tc.seed, ranks.rank, device)
    model = new_model(config, data.dataset.n_days, data.dataset.n_features).to(device)
    net = build_network(model, config, ranks, device)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, tc.n_batch)
    t = Trainee(
        config,
        data,
        model,
        build_ema(model, tc.ema_decay),
        optimizer,
        scheduler,
        build_scaler(config, device),
        build_watch(config),
        device,
        ranks,
        out_dir,
        build_word_decoder(config),
    )
    where = f"{device}" + (
        f" x {ranks.world_size} processes ({ranks.backend}, {share} trials each)"
        if ranks.enabled
        else ""
    )
    log.info(
        f"run {config.name}: {describe_size(count_parameters(model))} parameters on {where}; "
        f"{len(data.train_idx)} training trials, {len(data.eval_idx)} {data.eval_name} "
        f"trials over {data.dataset.n_days} days; {tc.n_batch} batches of {tc.batch_size}"
        + ("; compiled with torch.compile" if tc.compile else "")
    )
    if data.eval_name == "test":
        log.info(
            "checkpoints are chosen on the TEST split (data.eval_split=test): "
            "the test PER of the best checkpoint is optimistically biased"
        )
    first = 0 if resume is None else resume.step + 1
    loader = train_loader(data, config, device, first, ranks=ranks)
    state = LoopState(Best(metric=tc.select_on))
    if resume is not None:  # last: the RNG states are restored after everything drew from them
        restored = restore_state(
            resume, model, optimizer, scheduler, t.scaler, t.ema, t.watch, generator, ranks, tc.seed
        )
        state, generator = restored.state, restored.generator
        if restored.note:
            log.info(restored.note)
    learner = Learner(
        net, model, optimizer, t.scaler, StepOptions.of_run(config), generator, t.ema, ranks
    )
    step, ended = first - 1, None  # ended: why the loop left before its last batch
    progress = tqdm(
        total=tc.n_batch,
        initial=first,
        desc=config.name,
        unit="batch",
        disable=quiet,
        dynamic_ncols=True,
    )
    with progress as bar:
        tick = time.perf_counter()
        for step, batch in enumerate(loader, start=first):
            # --- one batch: augment, forward, CTC, backward, clip, step, schedule
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            done = step / max(tc.n_batch - 1, 1)  # the fraction of the run before this batch
            result = train_step(learner, batch.to(device), stop.requested, done)
            state = state.after_step(skipped=result.problem is not None)
            if result.problem is not None:
                _report_skipped(log, step, lr, result.problem, state.counters, tc, out_dir)
            if steps_per_batch(config.optim):
                scheduler.step()

            # --- its row in metrics.jsonl, the watch, the progress bar
            now = time.perf_counter()
            dt, tick = now - tick, now
            log.metrics(
                {
                    keys.STEP: step,
                    keys.TRAIN_LOSS: result.loss,
                    keys.LR: lr,
                    keys.GRAD_NORM: result.grad_norm,
                    keys.SKIPPED_STEPS: state.counters.skipped_steps,
                    keys.TIME_PER_BATCH: dt,
                    keys.SAMPLES_PER_S: tc.batch_size / dt if dt > 0 else math.nan,
                }
            )
            if t.watch:
                log_warnings(
                    log,
                    t.watch.on_batch(
                        step, lr, result.loss, result.grad_norm, result.problem is not None
                    ),
                )
            bar.update(1)
            best_per = state.best.per
            bar.set_postfix(
                loss=f"{result.loss:.3f}",
                lr=f"{lr:.2e}",
                per=f"{best_per:.3f}" if math.isfinite(best_per) else "-",
            )

            # --- every eval_every batches: score, choose best.pt, let the watch judge
            evaluated = (step + 1) % tc.eval_every == 0 or step + 1 == tc.n_batch
            pruned = False
            if evaluated:
                best, latest = evaluate_and_select(t, step, lr, state.best, log)
                state = replace(state, best=best, latest=latest)
                chosen = latest.chosen(tc.select_on_ema)
                if isinstance(scheduler, ReduceLROnPlateau):  # on the PER best.pt is chosen on
                    scheduler.step(chosen.score.per)
                if on_evaluation is not None:  # told of every evaluation; the last stops nothing
                    pruned = on_evaluation(chosen) and step + 1 < tc.n_batch

            # --- last.pt, the resume point, once everything of this step is logged
            every = tc.checkpoint_every
            if evaluated or result.stop_requested or (every and (step + 1) % every == 0):
                save_resume_point(t, step, state, generator)
                tick = time.perf_counter()  # evaluation and checkpoint time is not training time
            if state.best.stopped_early is not None:
                break
            if pruned:
                ended = PRUNED
                break
            if result.stop_requested and step + 1 < tc.n_batch:
                ended = INTERRUPTED
                break

    if ended == PRUNED:
        return RunOutcome(PRUNED, state.best, step)
    if ended == INTERRUPTED:
        signal = stop.signal_name or "a signal on another rank"
        return RunOutcome(INTERRUPTED, state.best, step, signal)
    skipped = state.counters.skipped_steps
    log.info(
        f"{skipped} steps skipped for non-finite loss or gradient"
        if skipped
        else "no step was skipped"
    )
    return RunOutcome(STOPPED_EARLY if state.best.stopped_early else FINISHED, state.best, step)


def _report_skipped(
    log: RunLog | SilentLog,
    step: int,
    lr: float,
    problem: str,
    counters: Counters,
    tc: TrainConfig,
    out_dir: Path,
) -> None:
    """Log a skipped step; a TrainingError after train.max_nonfinite_in_a_row in a row."""
    log.info(
        f"step {step}: {problem} at lr {lr:.3g}; step skipped "
        f"({counters.nonfinite_in_a_row} in a row, {counters.skipped_steps} in all)"
    )
    if counters.nonfinite_in_a_row >= tc.max_nonfinite_in_a_row:
        raise TrainingError(
            f"step {step}: {counters.nonfinite_in_a_row} non-finite steps in a row "
            f"(train.max_nonfinite_in_a_row); stopping. Last good checkpoints are in "
            f"{out_dir / 'checkpoints'}"
        )
