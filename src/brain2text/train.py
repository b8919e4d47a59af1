"""Training: one function that reads top to bottom.

    data -> validation carving and trial checks -> model, optimizer, schedule -> loop over
    batches (augment, forward, CTC, backward, clip, step, schedule) -> every ``eval_every``
    batches: greedy decoding, PER, best/last checkpoints.

A step whose loss or gradient is NaN/Inf is reported at that step, skipped (no optimizer
update) and counted; after ``train.max_nonfinite_in_a_row`` such steps in a row the run stops
with an error. The schedule advances every batch, skipped or not, so the LR stays a function of
the batch number.

The instability watch (``watch`` section, :mod:`brain2text.watch`) sees every batch and every
evaluation; each warning is logged at once (``WARNING step N (lr X): ...``) and written to
metrics.jsonl as its own row ``{"step", "warning": kind, "message", "lr"}``. With
``watch.stop_after`` the run stops after that many evaluations in a row with a trend warning:
its status is then "stopped early" and run.json holds ``stopped_early`` (step, reason, best step);
the report is written as for a finished run.

With ``train.ema_decay`` an EMA of the weights (:func:`build_ema`) is updated after every
optimizer step that was not skipped and scored at every evaluation beside the raw weights
(``<split>/loss_ema``, ``<split>/per_ema``); checkpoints hold both, and ``best.pt`` is chosen on
the raw PER unless ``train.select_on_ema``.

``checkpoints/last.pt`` is written once everything of its step is logged, at every evaluation
and every ``train.checkpoint_every`` batches, with the state of :mod:`brain2text.runstate`;
:func:`resume` continues a killed run from it exactly as the run would have gone on.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from brain2text import provenance
from brain2text.atomic import atomic_write_text
from brain2text.augment import augment_batch
from brain2text.batches import SkippedTrial, TrainBatches, check_trials, split_validation
from brain2text.checkpoint import load_checkpoint, save_checkpoint
from brain2text.config import RunConfig, to_yaml, validate
from brain2text.data.dataset import PreparedDataset, PreparedSplit, open_prepared
from brain2text.distributed import Dist, session
from brain2text.errors import ConfigError, DataError, TrainingError
from brain2text.evaluation import autocast_context, ctc_losses, decode_split, references, score
from brain2text.model import GRUDecoder, count_parameters, describe_size, output_lengths
from brain2text.runlog import RunLog, SilentLog, truncate_metrics
from brain2text.runstate import capture_rng, capture_state, restore_rng, restore_state
from brain2text.schedule import build_optimizer, build_scheduler
from brain2text.watch import InstabilityWatch, WatchWarning


def seed_everything(seed: int, rank: int = 0) -> torch.Generator:
    """Seed python, numpy and torch; returns the augmentation generator. Rank 0 (and a single
    process) uses ``seed`` itself; other ranks get streams of their own derived from (seed,
    rank), so their dropout masks and augmentation noise are not copies of rank 0's."""
    if rank:
        seed = int(np.random.SeedSequence((seed, rank)).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def prepare_run_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise DataError(f"{out_dir}: run folder exists and is not empty "
                            "(choose another --out or pass --overwrite)")
        for name in ("metrics.jsonl", "train.log", "run.json", "config.yaml"):
            (out_dir / name).unlink(missing_ok=True)
        for sub in ("checkpoints", "eval", "tensorboard", "report"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def write_run_record(out_dir: Path, base: dict, status: str, extra: dict | None = None) -> None:
    """run.json: the reproducibility record ``base`` plus the run's status and timing."""
    record = {**base, "status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
              **(extra or {})}
    atomic_write_text(out_dir / "run.json", json.dumps(record, indent=2) + "\n")


@dataclass(frozen=True)
class RunData:
    """What a run trains and evaluates on, after validation carving and trial checks."""

    dataset: PreparedDataset
    train_split: PreparedSplit
    train_idx: np.ndarray
    eval_split: PreparedSplit
    eval_idx: np.ndarray
    eval_name: str  # "val" or "test"
    skipped: list[SkippedTrial]


def load_run_data(config: RunConfig) -> RunData:
    dataset = open_prepared(Path(config.data.path))
    train_split = dataset.split("train")
    train_idx, val_idx = split_validation(train_split, config.data.val_blocks_per_day)
    if config.data.eval_split == "val":
        eval_split, eval_idx, eval_name = train_split, val_idx, "val"
        if len(val_idx) == 0:
            raise DataError(f"{dataset.path}: no day has two training blocks, so no validation "
                            "split can be carved (set data.eval_split=test to select on test)")
    else:
        eval_split, eval_name = dataset.split("test"), "test"
        eval_idx = np.arange(len(eval_split), dtype=np.int64)
    mc, skip = config.model, config.data.on_invalid_trial == "skip"
    train_idx, skipped = check_trials(train_split, train_idx, mc.kernel_len, mc.stride_len, skip)
    eval_idx, skipped_eval = check_trials(eval_split, eval_idx, mc.kernel_len, mc.stride_len, skip)
    if len(train_idx) == 0:
        raise DataError(f"{dataset.path}: no usable training trial")
    return RunData(dataset, train_split, train_idx, eval_split, eval_idx, eval_name,
                   skipped + skipped_eval)


def train(config: RunConfig, out_dir: Path, *, overwrite: bool = False, quiet: bool = False) -> dict:
    """Train a run; returns the best evaluation summary. Data problems are found before the
    run folder is touched."""
    out_dir = Path(out_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    with session(config.train.device, config.train.batch_size) as (ranks, device):
        data = load_run_data(config)
        if ranks.is_main:
            prepare_run_dir(out_dir, overwrite)
            atomic_write_text(out_dir / "config.yaml", to_yaml(config))
        ranks.barrier()
        return _run(config, data, out_dir, device, ranks, quiet, resume=None)


def resume(run_dir: Path, *, quiet: bool = False) -> dict:
    """Continue a run from ``checkpoints/last.pt`` (written every ``train.checkpoint_every``
    batches and at every evaluation) with the config stored in it: metrics.jsonl is cut back to
    the checkpoint's step, TensorBoard events after it are purged, and training goes on from the
    next batch with every state (weights, optimizer, schedule, scaler, EMA, RNGs, watch, best)
    as it was, so the run ends as it would have uninterrupted."""
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.is_file():
        raise DataError(f"{ckpt}: not found, so {run_dir} cannot be resumed (no checkpoint was "
                        "written yet; start the run again)")
    payload = load_checkpoint(ckpt)
    if "resume" not in payload:
        raise DataError(f"{ckpt}: holds no resume state (written by an older brain2text); "
                        "start the run again")
    config = validate(payload["config"], origin=f"{ckpt} (stored config)")
    if _stored_config(run_dir / "config.yaml") != config:
        raise DataError(f"{run_dir / 'config.yaml'}: missing or differs from the config stored in "
                        f"{ckpt}; restore it to resume")
    step = payload["step"]
    if step + 1 >= config.train.n_batch or payload["resume"]["best"].get("stopped_early"):
        raise DataError(f"{run_dir}: the run already ended at step {step}; nothing to resume")
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    with session(config.train.device, config.train.batch_size) as (ranks, device):
        data = load_run_data(config)
        if ranks.is_main:
            truncate_metrics(run_dir, step)  # everything after the checkpoint is replayed
        ranks.barrier()
        return _run(config, data, run_dir, device, ranks, quiet, resume=payload)


def _stored_config(path: Path) -> RunConfig | None:
    try:
        return validate(yaml.safe_load(path.read_text()), origin=str(path))
    except (OSError, yaml.YAMLError, ConfigError):
        return None


def _run(config: RunConfig, data: RunData, out_dir: Path, device: torch.device, ranks: Dist,
         quiet: bool, resume: dict | None) -> dict:
    if not ranks.is_main:  # rank 0 alone writes the run folder
        return _train_loop(config, data, out_dir, device, ranks, SilentLog(), True, resume)
    started = time.time()
    timing = lambda: {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),  # noqa: E731
                      "wall_s": round(time.time() - started, 1)}
    base = {"name": config.name, "parent": config.parent,
            **provenance.collect(device, Path(config.data.path), config.train.seed)}
    if ranks.enabled:
        base["processes"] = {"world_size": ranks.world_size, "backend": ranks.backend}
    if resume is not None:
        resumed = _previous_record(out_dir).get("resumed_from", [])
        base["resumed_from"] = [*resumed, {"step": resume["step"], **timing()}]
    write_run_record(out_dir, base, "running", timing())
    log = RunLog(out_dir, quiet=quiet, purge_step=None if resume is None else resume["step"] + 1)
    if resume is not None:
        log.info(f"resumed from step {resume['step']} ({out_dir / 'checkpoints' / 'last.pt'})")
    else:
        for s in data.skipped:
            log.info(f"skipped {s.where}: {s.reason}")
    try:
        best = _train_loop(config, data, out_dir, device, ranks, log, quiet, resume)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        write_run_record(out_dir, base, status, {**timing(), "error": str(exc)[:500]})
        log.info(f"run {status}: {exc}")
        log.close()
        raise
    stopped = best.get("stopped_early")
    write_run_record(out_dir, base, "stopped early" if stopped else "finished",
                     {**timing(), "best": {k: best.get(k) for k in ("per", "step", "split")},
                      **({"stopped_early": stopped} if stopped else {})})
    log.info(f"done: best {best['split']} PER {best['per']:.4f} at step {best['step']}; "
             f"checkpoints in {out_dir / 'checkpoints'}")
    # the run report: imported late (it is the layer above training); a plotting failure is
    # logged, never allowed to fail a run that finished
    try:
        from brain2text.report import write_report

        log.info(f"report: {write_report(out_dir)}")
    except Exception as exc:  # noqa: BLE001
        log.info(f"warning: no run report ({type(exc).__name__}: {' '.join(str(exc).split())})")
    log.close()
    return best


def _previous_record(out_dir: Path) -> dict:
    try:
        record = json.loads((out_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def build_watch(config: RunConfig) -> InstabilityWatch | None:
    wc = config.watch
    if not wc.enabled:
        return None
    ceiling = wc.grad_norm_ceiling if wc.grad_norm_ceiling is not None \
        else config.criteria.max_grad_norm
    return InstabilityWatch(wc.trend_evals, ceiling, wc.min_rel_rise, wc.stop_after)


def build_ema(model: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """EMA of ``model``'s weights and buffers (LayerNorm statistics, smoothing kernel), or None.
    Its first update copies the weights; each later one is ``decay * ema + (1 - decay) * w``."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def log_warnings(log: RunLog, warnings: list[WatchWarning]) -> None:
    for w in warnings:
        log.info(f"WARNING step {w.step} (lr {w.lr:.3g}): {w.message}")
        log.metrics({"step": w.step, "warning": w.kind, "message": w.message, "lr": w.lr})


def build_scaler(config: RunConfig, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling, on only for fp16 autocast on CUDA (bf16 and fp32 need none)."""
    tc = config.train
    enabled = tc.use_amp and tc.amp_dtype == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=enabled)


def batch_loss(model: torch.nn.Module, batch, config: RunConfig, device: torch.device,
               generator: torch.Generator) -> torch.Tensor:
    """Augment a training batch (already on ``device``), run the model (a GRUDecoder, or it
    wrapped by DDP or torch.compile), mean CTC loss."""
    features = augment_batch(batch.features, batch.n_bins, config.augment, generator)
    with autocast_context(device, config.train.use_amp, config.train.amp_dtype):
        logits = model(features, batch.day_index)  # (B, T', 41)
    n_out = output_lengths(batch.n_bins, config.model.kernel_len, config.model.stride_len)
    return ctc_losses(logits, n_out, batch.phonemes, batch.n_phones).mean()


def backward_clipped(loss: torch.Tensor, model: torch.nn.Module, scaler: torch.amp.GradScaler,
                     optimizer: torch.optim.Optimizer, clip: float | None) -> float:
    """Backward, unscale, clip to ``clip`` (None: no clipping); returns the pre-clip norm."""
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    return torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip else math.inf).item()


def build_network(model: GRUDecoder, config: RunConfig, ranks: Dist,
                  device: torch.device) -> torch.nn.Module:
    """What the training forward pass calls: the model, wrapped by DDP across ranks (its
    construction copies rank 0's weights to every rank) and by ``torch.compile`` when
    ``train.compile``. Evaluation and checkpoints use ``model`` itself."""
    net: torch.nn.Module = model
    if ranks.enabled:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if config.train.compile:
        net = torch.compile(net, dynamic=True)
    return net


def _train_loop(config: RunConfig, data: RunData, out_dir: Path, device: torch.device,
                ranks: Dist, log: RunLog | SilentLog, quiet: bool,
                resume: dict | None = None) -> dict:
    tc = config.train
    generator = seed_everything(tc.seed, ranks.rank)
    model = GRUDecoder(config.model, n_days=data.dataset.n_days).to(device)
    net = build_network(model, config, ranks, device)
    optimizer = build_optimizer(model.parameters(), config.optim)
    scheduler = build_scheduler(optimizer, config.optim, tc.n_batch)
    scaler = build_scaler(config, device)
    ema = build_ema(model, tc.ema_decay)
    clip = config.optim.grad_clip_norm
    where = f"{device}" + (f" x {ranks.world_size} processes ({ranks.backend}, "
                           f"{tc.batch_size // ranks.world_size} trials each)"
                           if ranks.enabled else "")
    log.info(f"run {config.name}: {describe_size(count_parameters(model))} parameters on {where}; "
             f"{len(data.train_idx)} training trials, {len(data.eval_idx)} {data.eval_name} "
             f"trials over {data.dataset.n_days} days; {tc.n_batch} batches of {tc.batch_size}"
             + ("; compiled with torch.compile" if tc.compile else ""))
    if data.eval_name == "test":
        log.info("checkpoints are chosen on the TEST split (data.eval_split=test): "
                 "the test PER of the best checkpoint is optimistically biased")

    first = 0 if resume is None else resume["step"] + 1
    # batch k is a pure function of (seed, k): a resumed run starts at the batch after the
    # checkpoint. The loader's own generator keeps its base-seed draw off the global RNG.
    loader = DataLoader(
        TrainBatches(data.train_split, data.train_idx, tc.batch_size, tc.seed, first, tc.n_batch,
                     tc.length_bucket_pool,
                     share=ranks.share(tc.batch_size) if ranks.enabled else None),
        batch_size=None, shuffle=False, num_workers=tc.num_workers,
        persistent_workers=tc.num_workers > 0, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(tc.seed),
    )
    state = {"config": config.to_dict(), "days": data.dataset.days}
    eval_name = data.eval_name
    eval_refs = references(data.eval_split, data.eval_idx)

    def weights_state(evals: dict) -> dict:
        """What every checkpoint holds beside the raw weights."""
        out = {**state, **evals, "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict()}
        if ema is not None:
            out |= {"ema": ema.module.state_dict(), "ema_n_averaged": int(ema.n_averaged.item())}
        return out

    def evaluate_weights(module: torch.nn.Module) -> dict:
        decoded = decode_split(module, data.eval_split, data.eval_idx, device, tc.eval_batch_size,
                               tc.use_amp, tc.amp_dtype, ranks)
        return score(eval_refs, decoded, data.eval_split.day_index[data.eval_idx],
                     data.dataset.days)

    best = {"per": math.inf}
    latest_eval: dict = {}  # the last evaluation's "eval" (and "eval_ema") checkpoint entries
    watch = build_watch(config)
    skipped_steps = nonfinite_in_a_row = 0
    if resume is not None:  # last: the RNG states are restored after everything drew from them
        best, latest_eval, skipped_steps, nonfinite_in_a_row = restore_state(
            resume, model, optimizer, scheduler, scaler, ema, watch, generator)
        by_rank = resume["resume"].get("rng_by_rank", [])
        if len(by_rank) == ranks.world_size:
            restore_rng(by_rank[ranks.rank], generator)
        elif ranks.enabled:  # another number of processes: ranks > 0 keep fresh streams
            if ranks.rank:
                generator = seed_everything(tc.seed + resume["step"] + 1, ranks.rank)
            log.info(f"the checkpoint was written by {max(len(by_rank), 1)} process(es), this "
                     f"run has {ranks.world_size}: dropout and augmentation streams of ranks > 0 "
                     "start afresh")
    bar = tqdm(total=tc.n_batch, initial=first, desc=config.name, unit="batch", disable=quiet,
               dynamic_ncols=True)
    tick = time.perf_counter()

    # --- the loop
    for step, batch in enumerate(loader, start=first):
        model.train()
        batch = batch.to(device)
        lr = optimizer.param_groups[0]["lr"]
        loss = batch_loss(net, batch, config, device, generator)
        # the global batch's loss, the same on every rank: all skip a non-finite step together
        loss_value = ranks.mean(loss.detach()).item()  # a CPU-GPU sync point

        optimizer.zero_grad(set_to_none=True)
        grad_norm = math.nan
        problem = None
        if not math.isfinite(loss_value):
            problem = f"loss is {loss_value}"
        else:
            grad_norm = backward_clipped(loss, model, scaler, optimizer, clip)
            if not math.isfinite(grad_norm):
                problem = f"gradient norm is {grad_norm}"
        if problem is None:
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(model)
            nonfinite_in_a_row = 0
        else:
            if scaler.is_enabled():
                scaler.update(scaler.get_scale() / 2)
            skipped_steps += 1
            nonfinite_in_a_row += 1
            log.info(f"step {step}: {problem} at lr {lr:.3g}; step skipped "
                     f"({nonfinite_in_a_row} in a row, {skipped_steps} in all)")
            if nonfinite_in_a_row >= tc.max_nonfinite_in_a_row:
                bar.close()
                raise TrainingError(
                    f"step {step}: {nonfinite_in_a_row} non-finite steps in a row "
                    f"(train.max_nonfinite_in_a_row); stopping. Last good checkpoints are in "
                    f"{out_dir / 'checkpoints'}")
        scheduler.step()

        now = time.perf_counter()
        dt, tick = now - tick, now
        row = {"step": step, "train/loss": loss_value, "lr": lr, "grad_norm": grad_norm,
               "skipped_steps": skipped_steps, "time_per_batch": dt,
               "samples_per_s": tc.batch_size / dt if dt > 0 else math.nan}
        log.metrics(row)
        if watch:
            log_warnings(log, watch.on_batch(step, lr, row["train/loss"], grad_norm,
                                             problem is not None))
        bar.update(1)
        bar.set_postfix(loss=f"{row['train/loss']:.3f}", lr=f"{lr:.2e}",
                        per=f"{best['per']:.3f}" if math.isfinite(best["per"]) else "-")

        evaluated = (step + 1) % tc.eval_every == 0 or step + 1 == tc.n_batch
        stopping = False
        if evaluated:
            summary = evaluate_weights(model)
            eval_row = {"step": step, f"{eval_name}/loss": summary["loss"],
                        f"{eval_name}/per": summary["per"],
                        **{f"{eval_name}/per/{d}": v for d, v in summary["per_day"].items()}}
            message = f"step {step}: {eval_name} loss {summary['loss']:.4f} PER {summary['per']:.4f}"
            latest_eval = {"eval": {**summary, "split": eval_name, "step": step}}
            chosen = summary
            if ema is not None:
                ema_summary = evaluate_weights(ema.module)
                eval_row |= {f"{eval_name}/loss_ema": ema_summary["loss"],
                             f"{eval_name}/per_ema": ema_summary["per"]}
                message += f", EMA loss {ema_summary['loss']:.4f} PER {ema_summary['per']:.4f}"
                latest_eval["eval_ema"] = {**ema_summary, "split": eval_name, "step": step}
                if tc.select_on_ema:
                    chosen = ema_summary
            log.metrics(eval_row)
            improved = chosen["per"] < best["per"]
            log.info(f"{message}{' (best)' if improved else ''} lr {lr:.3g}")
            if improved:
                best = {**chosen, "split": eval_name, "step": step,
                        "weights": "ema" if chosen is not summary else "raw"}
                if ranks.is_main:
                    save_checkpoint(out_dir / "checkpoints" / "best.pt", model,
                                    weights_state(latest_eval), step)
            if watch:
                log_warnings(log, watch.on_eval(step, lr, summary["loss"], summary["per"]))
                if watch.stop_reason:  # after best.pt: it predates the trend
                    log.info(f"stopping early at step {step}: {watch.stop_reason}; best "
                             f"checkpoint is from step {best.get('step')}")
                    best = {**best, "stopped_early": {"step": step, "reason": watch.stop_reason,
                                                      "best_step": best.get("step")}}
                    stopping = True
        # last.pt, the resume point, is written once everything of this step is logged
        every = tc.checkpoint_every
        checkpoint = evaluated or bool(every and (step + 1) % every == 0)
        if checkpoint:
            rngs = ranks.gather(capture_rng(generator, device))  # every rank's random streams
            if ranks.is_main:
                resume_state = capture_state(best, latest_eval, skipped_steps, nonfinite_in_a_row,
                                             scaler, watch, rngs[0])
                if ranks.enabled:
                    resume_state["rng_by_rank"] = rngs
                save_checkpoint(out_dir / "checkpoints" / "last.pt", model,
                                {**weights_state(latest_eval), "resume": resume_state}, step)
        if stopping:
            break
        if checkpoint:
            tick = time.perf_counter()  # evaluation and checkpoint time is not training time
    bar.close()
    log.info(f"{skipped_steps} steps skipped for non-finite loss or gradient" if skipped_steps
             else "no step was skipped")
    return best
