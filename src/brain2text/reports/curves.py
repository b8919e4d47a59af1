"""The run report's five plots, drawn from the rows of ``metrics.jsonl``: learning rate, losses,
PER per day, pre-clip gradient norm and skipped steps; the LR and PER plots mark the instability
watch's warnings. Plots use matplotlib's Agg canvas directly (no pyplot, no global state).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from brain2text.config import RunConfig
from brain2text.plotting import moving_average, new_figure, png_bytes
from brain2text.reports.criteria import as_float, batch_rows, eval_split_of
from brain2text.runs import metric_keys as mk

SMOOTH_FRACTION = 0.05  # moving-average window of the smoothed train loss, as a share of batches
FIGSIZE = (8.0, 3.2)
WARNING_COLORS = {"trend": "tab:red", "grad_norm": "tab:orange", "nonfinite": "tab:purple"}


def _finite(values: list[Any]) -> np.ndarray:
    return np.array([as_float(v) for v in values], dtype=float)


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    return png_bytes(fig)


def _axes(title: str, ylabel: str) -> tuple[Figure, Axes]:
    fig = new_figure(FIGSIZE)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("batch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def warning_rows(rows: list[dict]) -> list[dict]:
    """The instability watch's rows (brain2text.training.watch): step, warning (kind), message,
    lr."""
    return [r for r in rows if mk.WARNING in r]


def _mark_warnings(ax: Axes, warnings: list[dict]) -> None:
    """A vertical line at each warning's step, one legend entry per kind."""
    for kind in sorted({str(w[mk.WARNING]) for w in warnings}):
        color = WARNING_COLORS.get(kind, "tab:gray")
        for i, w in enumerate(x for x in warnings if x[mk.WARNING] == kind):
            ax.axvline(
                int(w[mk.STEP]),
                color=color,
                ls=":",
                lw=1,
                label=f"warning: {kind}" if i == 0 else None,
            )


def _lr_plot(batches: list[dict], steps: np.ndarray, warnings: list[dict]) -> bytes:
    fig, ax = _axes("learning rate", "lr")
    ax.plot(steps, _finite([r.get(mk.LR) for r in batches]))
    _mark_warnings(ax, warnings)
    if warnings:
        ax.legend(fontsize="small")
    return _png(fig)


def _loss_plot(batches: list[dict], steps: np.ndarray, evals: list[dict], split: str) -> bytes:
    fig, ax = _axes("loss", "CTC loss")
    loss = _finite([r[mk.TRAIN_LOSS] for r in batches])
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, lw=0.8, label="train (raw)")
    window = max(1, int(len(loss) * SMOOTH_FRACTION))
    ax.plot(
        steps, moving_average(loss, window), color="tab:blue", label=f"train ({window}-batch mean)"
    )
    if evals:
        ax.plot(
            [int(r[mk.STEP]) for r in evals],
            _finite([r.get(mk.loss(split)) for r in evals]),
            "o-",
            color="tab:orange",
            label=f"{split}",
        )
    ax.legend()
    return _png(fig)


def _per_plot(evals: list[dict], split: str, warnings: list[dict]) -> bytes:
    fig, ax = _axes(f"{split} PER", "PER")
    eval_steps = [int(r[mk.STEP]) for r in evals]
    if evals:
        prefix = mk.per_day_prefix(split)
        days = sorted({k for r in evals for k in r if k.startswith(prefix)})
        for key in days:
            ax.plot(
                eval_steps,
                _finite([r.get(key) for r in evals]),
                lw=0.8,
                alpha=0.7,
                label=key.removeprefix(prefix),
            )
        ax.plot(
            eval_steps,
            _finite([r[mk.per(split)] for r in evals]),
            "o-",
            color="black",
            lw=2,
            label="all days",
        )
        if any(mk.per_ema(split) in r for r in evals):  # train.ema_decay: the EMA weights
            ax.plot(
                eval_steps,
                _finite([r.get(mk.per_ema(split)) for r in evals]),
                "s--",
                color="dimgray",
                lw=1.5,
                label="all days, EMA weights",
            )
        words = [(int(r[mk.STEP]), as_float(r[mk.wer(split)])) for r in evals if mk.wer(split) in r]
        if words:  # eval.word_decoding: WER on the same axis (both are error rates)
            ax.plot(*zip(*words, strict=True), "D-", color="tab:red", lw=1.5, label="WER (LM)")
        ax.legend(
            fontsize="x-small",
            ncol=max(1, len(days) // 12),
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
        )
    else:
        ax.text(0.5, 0.5, "no evaluation in the metrics", ha="center", transform=ax.transAxes)
    _mark_warnings(ax, warnings)  # after the legend: the days' legend stays as it was
    return _png(fig)


def _grad_norm_plot(config: RunConfig, batches: list[dict], steps: np.ndarray) -> bytes:
    fig, ax = _axes("gradient norm before clipping", "norm (log)")
    norms = _finite([r.get(mk.GRAD_NORM) for r in batches])
    ok = np.isfinite(norms) & (norms > 0)
    ax.plot(steps[ok], norms[ok], lw=0.8, label="pre-clip norm")
    for x in steps[~np.isfinite(norms)]:
        ax.axvline(x, color="red", alpha=0.4, lw=0.8)
    if not np.all(np.isfinite(norms)):
        ax.plot([], [], color="red", alpha=0.4, label="non-finite (skipped)")
    if config.optim.grad_clip_norm:
        ax.axhline(
            config.optim.grad_clip_norm,
            color="tab:green",
            ls="--",
            label=f"clip {config.optim.grad_clip_norm:g}",
        )
    if config.criteria.max_grad_norm:
        ax.axhline(
            config.criteria.max_grad_norm,
            color="tab:red",
            ls=":",
            label=f"criterion < {config.criteria.max_grad_norm:g}",
        )
    ax.set_yscale("log")
    ax.legend()
    return _png(fig)


def _skipped_plot(batches: list[dict], steps: np.ndarray) -> bytes:
    fig, ax = _axes("skipped steps (non-finite loss or gradient)", "cumulative count")
    skipped = _finite([r.get(mk.SKIPPED_STEPS, 0) for r in batches])
    ax.step(steps, skipped, where="post")
    top = max((v for v in skipped if math.isfinite(v)), default=0.0)
    ax.set_ylim(-0.05 * max(top, 1.0), max(top, 1.0) * 1.1)  # a run with none: a flat line at 0
    return _png(fig)


def plot_all(config: RunConfig, rows: list[dict]) -> dict[str, bytes]:
    """File name -> PNG bytes of each plot."""
    batches = batch_rows(rows)
    steps = np.array([int(r[mk.STEP]) for r in batches])
    split = eval_split_of(rows, config.data.eval_split) or config.data.eval_split
    evals = [r for r in rows if mk.per(split) in r]
    warnings = warning_rows(rows)
    return {
        "lr.png": _lr_plot(batches, steps, warnings),
        "loss.png": _loss_plot(batches, steps, evals, split),
        "per.png": _per_plot(evals, split, warnings),
        "grad_norm.png": _grad_norm_plot(config, batches, steps),
        "skipped.png": _skipped_plot(batches, steps),
    }
