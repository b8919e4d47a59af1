"""``brain2text compare``: several runs' curves on one figure, and how their configs differ.

The figure has four panels sharing the batch axis: smoothed training loss, evaluation PER,
learning rate and pre-clip gradient norm (log scale). The config table lists the dotted keys
whose values differ between the runs' config.yaml files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brain2text.atomic import atomic_write_bytes
from brain2text.config import config_differences
from brain2text.errors import DataError
from brain2text.plotting import moving_average, new_figure, png_bytes
from brain2text.reports.listing import RUN_MARKERS, eval_curve, format_table, series
from brain2text.runs import metric_keys as mk
from brain2text.runs.folder import read_config, read_record
from brain2text.runs.runlog import read_metrics

SMOOTH_FRACTION = 0.02  # moving-average window as a fraction of the batches shown
MAX_CELL = 40  # config values longer than this are cut in the table
HIDDEN_KEYS = ("name",)  # already the column headers


@dataclass(frozen=True)
class LoadedRun:
    folder: Path
    label: str
    rows: list[dict[str, Any]]
    config: dict[str, Any]


def load_runs(run_dirs: list[Path]) -> list[LoadedRun]:
    runs = []
    for run_dir in map(Path, run_dirs):
        if not run_dir.is_dir():
            raise DataError(f"{run_dir}: no such run folder")
        if not any((run_dir / m).is_file() for m in RUN_MARKERS):
            raise DataError(f"{run_dir}: not a run folder (no run.json or metrics.jsonl)")
        record = read_record(run_dir) or {}
        runs.append(
            LoadedRun(
                run_dir,
                str(record.get("name") or run_dir.name),
                read_metrics(run_dir),
                read_config(run_dir),
            )
        )
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):  # same run name twice: tell them apart by folder
        runs = [LoadedRun(r.folder, f"{r.label} ({r.folder})", r.rows, r.config) for r in runs]
    return runs


# ----------------------------------------------------------------------------- curves


def plot_runs(runs: list[LoadedRun]) -> Figure:
    """The comparison figure."""
    fig = new_figure((12, 8))
    axes = fig.subplots(2, 2, sharex=True)
    (ax_loss, ax_per), (ax_lr, ax_grad) = axes
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        loss = series(run.rows, mk.TRAIN_LOSS)
        if loss:
            steps, values = np.array(loss).T
            window = max(1, int(len(values) * SMOOTH_FRACTION))
            ax_loss.plot(steps, moving_average(values, window), color=color, label=run.label)
        per = eval_curve(run.rows)
        if per:
            ax_per.plot(*np.array(per).T, color=color, marker="o", markersize=3, label=run.label)
        lr = series(run.rows, mk.LR)
        if lr:
            ax_lr.plot(*np.array(lr).T, color=color, label=run.label)
        grad = [(s, v) for s, v in series(run.rows, mk.GRAD_NORM) if v > 0]  # log scale
        if grad:
            ax_grad.plot(*np.array(grad).T, color=color, linewidth=0.7, label=run.label)
    ax_loss.set_title("training CTC loss (moving average)")
    ax_per.set_title("evaluation PER")
    ax_lr.set_title("learning rate")
    ax_grad.set_title("gradient norm before clipping")
    ax_grad.set_yscale("log")
    for ax in (ax_lr, ax_grad):
        ax.set_xlabel("batch")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    handles, labels = ax_loss.get_legend_handles_labels()
    for ax in axes.flat:  # a run without training rows still gets its legend entry
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=False):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4) or 1, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def save_figure(runs: list[LoadedRun], out: Path) -> None:
    png = png_bytes(plot_runs(runs))
    atomic_write_bytes(out, lambda f: f.write(png))


# ----------------------------------------------------------------------------- config diff


def _cell(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, bool)) or value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def config_table(runs: list[LoadedRun]) -> str:
    diffs = config_differences([r.config for r in runs], ignore=HIDDEN_KEYS)
    if not diffs:
        return "the runs' configs are identical (name aside)"
    rows = [[key, *map(_cell, values)] for key, values in diffs]
    return format_table(["key", *(r.label for r in runs)], rows)
