"""``brain2text lr-find``: the learning-rate range test (Smith 2015, as fastai runs it).

Data, model and optimizer are built exactly as :mod:`brain2text.training.loop` builds them, and
each batch is trained by the loop's own loader and step (same batch order, augmentation, CTC
loss, AMP, ``train.grad_accum`` micro-batches and gradient clipping), but there is no schedule:
the LR of batch ``i`` of ``n`` is ``start * (end / start) ** (i / (n - 1))``, an exponential
sweep set directly on the optimizer's param groups. The loss of every batch is recorded and
smoothed with a bias-corrected exponential moving average (beta 0.98); the sweep stops early
once the smoothed loss exceeds 4x the best smoothed loss so far, or the loss or gradient goes
non-finite.

The suggestion for OneCycle's ``max_lr`` (``optim.max_lr``) is **the LR of the minimum smoothed
loss divided by 10**. The LR of the steepest descent of the smoothed loss (most negative slope
against log LR, before the minimum) is reported too, but is not the suggestion: over a few
hundred noisy mini-batch losses the steepest point moves with the noise and with the moving
average's lag, while the minimum is a stable landmark, and one decade below it the loss still
falls quickly; OneCycle's warm-up starts from ``max_lr / div_factor`` anyway. When the smoothed
loss never falls below its first value, or its minimum lies within a decade of the start LR (so
min/10 would lie outside the sweep), there is no meaningful number and a TrainingError says so.

Beta 0.98 averages over about 50 batches, so the smoothed curve lags the raw losses by tens of
batches: on sweeps much shorter than the default 200 batches its minimum (and the suggestion)
lands later, at a higher LR, than the raw curve's.

Outputs (``runs/<name>-lrfind`` by default): ``lr_find.json`` (the sweep, the suggestions and the
resolved config) and ``lr_find.png`` (loss against LR on a log axis, the suggestion marked). A
run file can take the suggestion with ``optim.max_lr_from: <folder>/lr_find.json``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.config import LR_FIND_KEY, RunConfig
from brain2text.distributed import pick_device
from brain2text.errors import TrainingError
from brain2text.model.factory import new_model
from brain2text.plotting import new_figure, png_bytes
from brain2text.training.optim import build_optimizer
from brain2text.training.rundata import load_run_data, train_loader
from brain2text.training.step import (
    CpuMode,
    Learner,
    StepOptions,
    build_scaler,
    cpu_mode,
    seed_everything,
    train_step,
)

DEFAULT_START_LR = 1e-7
DEFAULT_END_LR = 1.0
DEFAULT_BATCHES = 200
SMOOTH_BETA = 0.98
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss exceeds this many times its best value
SUGGESTION_RULE = "lr of the minimum smoothed loss / 10"
STEEPEST_SKIP = 5  # first batches left out of the steepest-descent search: there the
# bias-corrected average is close to the raw, noisy losses and its first drop looks steepest


# ----------------------------------------------------------------------------- pure maths


def exponential_lrs(start: float, end: float, n: int) -> np.ndarray:
    """(n,) LRs from ``start`` to ``end`` with a constant ratio between neighbours."""
    if not (0 < start < end) or n < 2:
        raise ValueError(f"need 0 < start ({start}) < end ({end}) and at least 2 batches ({n})")
    return start * (end / start) ** (np.arange(n) / (n - 1))


def ema_smooth(losses, beta: float = SMOOTH_BETA) -> np.ndarray:
    """Exponential moving average with bias correction: ``avg_i / (1 - beta**(i+1))``."""
    out, avg = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def divergence(smoothed: np.ndarray, factor: float = DIVERGE_FACTOR) -> str | None:
    """Why the sweep should stop after the last smoothed value (None: go on)."""
    if len(smoothed) == 0:
        return None
    last = smoothed[-1]
    if not math.isfinite(last):
        return f"smoothed loss is {last}"
    best = float(np.min(smoothed))
    if last > factor * best:
        return f"smoothed loss {last:.4g} > {factor:g} x best {best:.4g}"
    return None


@dataclass(frozen=True)
class Suggestion:
    max_lr: float  # the suggestion: min_loss_lr / 10, rounded to 3 significant digits
    min_loss_lr: float  # LR of the minimum smoothed loss
    min_loss: float
    steepest_lr: float | None  # LR of the most negative d(smoothed)/d(log lr) before the minimum
    rule: str = SUGGESTION_RULE


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> Suggestion:
    """The suggested max_lr of a sweep (see the module docstring); TrainingError when the
    sweep never improved or its minimum is too close to the start for min/10 to be in range."""
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    if len(lrs) < 2:
        raise TrainingError(
            f"lr-find: only {len(lrs)} batch ran; no curve to read "
            "(lower --start-lr or raise --batches)"
        )
    best = int(np.argmin(smoothed))
    if best == 0 or not smoothed[best] < smoothed[0]:
        raise TrainingError(
            f"lr-find: the smoothed loss never fell below its first value "
            f"({smoothed[0]:.4g} at lr {lrs[0]:.3g}); no max_lr to suggest "
            "(lower --start-lr, or check the data and model)"
        )
    max_lr = float(f"{lrs[best] / 10:.3g}")
    if max_lr < lrs[0]:
        raise TrainingError(
            f"lr-find: the smoothed loss is lowest at lr {lrs[best]:.3g}, within "
            f"a decade of the start lr {lrs[0]:.3g}; min/10 lies outside the "
            "sweep (lower --start-lr)"
        )
    steepest = None
    first = STEEPEST_SKIP if best - STEEPEST_SKIP >= 2 else 0
    if best - first >= 2:
        slope = np.gradient(smoothed[first : best + 1], np.log10(lrs[first : best + 1]))
        steepest = float(lrs[first + int(np.argmin(slope))])
    return Suggestion(max_lr, float(lrs[best]), float(smoothed[best]), steepest)


# ----------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class LRFindResult:
    start_lr: float
    end_lr: float
    batches: int  # requested
    batches_run: int
    stop_reason: str
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: Suggestion | None  # None when the sweep gave no usable curve
    problem: str | None  # why there is no suggestion
    cpu: CpuMode | None = None  # the CPU settings the sweep ran under


def run_sweep(
    config: RunConfig,
    start_lr: float = DEFAULT_START_LR,
    end_lr: float = DEFAULT_END_LR,
    batches: int = DEFAULT_BATCHES,
) -> LRFindResult:
    """Train ``batches`` batches with an exponentially rising LR; record and analyse the losses."""
    schedule = exponential_lrs(start_lr, end_lr, batches)
    with cpu_mode(config.train) as cpu:
        lrs, losses, stop_reason = _sweep(config, schedule)
    smoothed = ema_smooth(losses)
    suggestion, problem = None, None
    try:
        suggestion = suggest(np.array(lrs), smoothed)
    except TrainingError as exc:
        problem = str(exc)
    return LRFindResult(
        start_lr,
        end_lr,
        batches,
        len(lrs),
        stop_reason,
        lrs,
        losses,
        [float(s) for s in smoothed],
        suggestion,
        problem,
        cpu,
    )


def _sweep(config: RunConfig, schedule: np.ndarray) -> tuple[list[float], list[float], str]:
    """The sweep's training: the LRs and losses of the batches run, and why it stopped."""
    tc = config.train
    device = pick_device(tc.device)
    data = load_run_data(config)
    generator = seed_everything(tc.seed, device=device)
    model = new_model(config, data.dataset.n_days, data.dataset.n_features).to(device)
    optimizer = build_optimizer(model, config.optim)
    learner = Learner(
        model, model, optimizer, build_scaler(config, device), StepOptions.of_run(config), generator
    )
    lrs: list[float] = []
    losses: list[float] = []
    model.train()
    for step, batch in enumerate(train_loader(data, config, device, stop=len(schedule))):
        lr = float(schedule[step])
        for group in optimizer.param_groups:
            group["lr"] = lr
        result = train_step(learner, batch.to(device))
        if not math.isfinite(result.loss):  # nothing to record: the step was skipped
            return lrs, losses, f"batch {step}: {result.problem} at lr {lr:.3g}"
        lrs.append(lr)
        losses.append(result.loss)
        if result.problem is not None:  # a non-finite gradient: recorded, then stopped
            return lrs, losses, f"batch {step}: {result.problem} at lr {lr:.3g}"
        why = divergence(ema_smooth(losses))  # O(n) per batch; n is a few hundred
        if why is not None:
            return lrs, losses, f"batch {step}: {why} at lr {lr:.3g}"
    return lrs, losses, "completed"


# ----------------------------------------------------------------------------- outputs


def plot(result: LRFindResult, title: str) -> Figure:
    fig = new_figure((8.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.losses, color="0.7", lw=0.8, label="loss per batch")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label=f"smoothed (EMA {SMOOTH_BETA})")
    s = result.suggestion
    if s is not None:
        ax.axvline(s.max_lr, color="C3", ls="--", label=f"suggested max_lr {s.max_lr:.3g}")
        ax.plot(
            [s.min_loss_lr],
            [s.min_loss],
            "v",
            color="C2",
            label=f"min smoothed loss at {s.min_loss_lr:.3g}",
        )
        if s.steepest_lr is not None:
            ax.axvline(s.steepest_lr, color="C1", ls=":", label=f"steepest at {s.steepest_lr:.3g}")
    if result.smoothed:  # raw losses near divergence would squash the curve: cap the y axis
        lo = min(min(result.losses), min(result.smoothed))
        hi = max(result.smoothed[0], min(result.smoothed)) * 1.5
        ax.set_ylim(lo - 0.05 * abs(hi - lo), hi + 1e-9)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("CTC loss")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def write_outputs(result: LRFindResult, config: RunConfig, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    s = result.suggestion
    record = {
        "name": config.name,
        LR_FIND_KEY: s.max_lr if s else None,
        "rule": SUGGESTION_RULE,
        "suggestion": asdict(s) if s else None,
        "problem": result.problem,
        **{k: v for k, v in asdict(result).items() if k not in ("suggestion", "problem", "cpu")},
        "cpu": result.cpu.to_dict() if result.cpu else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": config.to_dict(),
    }
    atomic_write_text(out_dir / "lr_find.json", json.dumps(record, indent=2) + "\n")
    png = png_bytes(plot(result, f"LR range test: {config.name}"))
    atomic_write_bytes(out_dir / "lr_find.png", lambda f: f.write(png))


def summary(result: LRFindResult, out_dir: Path) -> str:
    """One paragraph for the console (raises the result's TrainingError when it has none)."""
    if result.suggestion is None:
        raise TrainingError(f"{result.problem} (curve in {Path(out_dir) / 'lr_find.png'})")
    s = result.suggestion
    steep = f"{s.steepest_lr:.3g}" if s.steepest_lr is not None else "n/a"
    json_path = Path(out_dir) / "lr_find.json"
    return (
        f"LR range test: {result.batches_run} of {result.batches} batches from "
        f"{result.start_lr:.3g} to {result.end_lr:.3g} (stop: {result.stop_reason}). "
        f"The smoothed loss was lowest ({s.min_loss:.4g}) at lr {s.min_loss_lr:.3g}; "
        f"steepest descent at lr {steep}. Suggested max_lr = {s.max_lr:.3g} ({s.rule}): "
        f"train with `optim.max_lr={s.max_lr:.3g}`, or put `max_lr_from: {json_path}` in "
        f"the run file's optim section. Curve: {Path(out_dir) / 'lr_find.png'}."
    )


def lr_find(
    config: RunConfig,
    out_dir: Path,
    *,
    start_lr: float = DEFAULT_START_LR,
    end_lr: float = DEFAULT_END_LR,
    batches: int = DEFAULT_BATCHES,
) -> LRFindResult:
    """Run the sweep and write ``lr_find.json`` and ``lr_find.png`` into ``out_dir``."""
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise TrainingError(f"lr-find: need 0 < --start-lr ({start_lr}) < --end-lr ({end_lr})")
    if batches < 2:
        raise TrainingError(f"lr-find: --batches must be at least 2 (got {batches})")
    result = run_sweep(config, start_lr, end_lr, batches)
    write_outputs(result, config, out_dir)
    return result
