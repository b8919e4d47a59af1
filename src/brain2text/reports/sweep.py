"""A sweep's outputs beside its children: ``sweep.png`` (each child's best PER against each
varied key), ``sweep_curves.png`` (the children's validation curves overlaid) and
``sweep.html`` (the table, both figures and each child's verdicts).

A child is any run folder under the sweep's; the values of the varied keys are read from its
own config.yaml. Children that the pruner stopped are drawn and listed as pruned (their PER is
the best they reached before it), never as finished; children still running or interrupted are
drawn hollow.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter, NullLocator

from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.config import validate
from brain2text.errors import Brain2TextError, DataError
from brain2text.plotting import new_figure, png_bytes
from brain2text.reports.criteria import judge
from brain2text.reports.listing import (
    SWEEP_FILE,
    RunSummary,
    eval_curve,
    find_run_dirs,
    reference_rows,
    summarize_run,
    table_rows,
    varied_values,
)
from brain2text.reports.page import CSS, html_table, image
from brain2text.runs.folder import read_config, read_record
from brain2text.runs.runlog import read_metrics

FIGURE_FILE = "sweep.png"
CURVES_FILE = "sweep_curves.png"
PAGE_FILE = "sweep.html"
ENDED = ("finished", "stopped early")
PRUNED = "pruned"
MAX_TICKS = 8  # a numeric key with at most this many values gets a labelled tick at each
PAGE_CSS = ".pruned{color:#777;font-style:italic;background:#eee}"


@dataclass(frozen=True)
class SweepChild:
    summary: RunSummary
    values: dict[str, Any]  # the child's values of the varied keys
    curve: list[tuple[int, float]]  # (step, evaluation PER)
    pruned_at: int | None  # the step after which the pruner stopped it


def read_sweep(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / SWEEP_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable sweep record ({type(exc).__name__})") from None
    return record


def sweep_children(out_dir: Path, varied: list[str]) -> list[SweepChild]:
    children = []
    for folder in find_run_dirs(Path(out_dir)):
        if folder == Path(out_dir):
            continue
        pruned = (read_record(folder) or {}).get("pruned") or {}
        children.append(
            SweepChild(
                summarize_run(folder),
                varied_values(folder, varied),
                eval_curve(read_metrics(folder)),
                pruned.get("step"),
            )
        )
    return sorted(children, key=lambda c: c.summary.name)


def _position(value: Any) -> float | str:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _style(child: SweepChild) -> dict[str, Any]:
    if child.summary.status == PRUNED:
        return {"marker": "x", "color": "tab:gray"}
    if child.summary.status in ENDED:
        return {"marker": "o", "color": "tab:blue"}
    return {"marker": "o", "facecolors": "none", "edgecolors": "tab:blue"}


def plot_per_against_keys(children: list[SweepChild], varied: list[str]) -> bytes:
    """One panel per varied key, a point per child that has evaluated: finished dots, pruned
    crosses, unfinished rings."""
    varied = varied or ["(none)"]
    points = [(c, c.summary.best_per) for c in children if c.summary.best_per is not None]
    fig = new_figure((4.0 * len(varied), 3.2))
    for i, key in enumerate(varied):
        ax = fig.add_subplot(1, len(varied), i + 1)
        xs = [_position(c.values.get(key, "-")) for c, _ in points]
        numbers = [x for x in xs if not isinstance(x, str)]
        numeric = bool(xs) and len(numbers) == len(xs)
        labels = list(dict.fromkeys(map(str, xs)))  # categorical: in order of first appearance
        for x, (child, per) in zip(xs, points, strict=True):
            ax.scatter([x if numeric else labels.index(str(x))], [per], **_style(child))
        if numeric and key.endswith("lr") and min(numbers) > 0:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: no overlap
        if numeric and len(set(numbers)) <= MAX_TICKS:  # a grid: a tick at each value tried
            values = sorted(set(numbers))
            ax.set_xticks(values, [f"{v:g}" for v in values], rotation=30)
            ax.xaxis.set_minor_locator(NullLocator())
        elif xs and not numeric:
            ax.set_xticks(range(len(labels)), labels)
        if not xs:
            ax.text(0.5, 0.5, "no child has evaluated yet", ha="center", transform=ax.transAxes)
        ax.set_xlabel(key)
        ax.set_ylabel("best evaluation PER")
        ax.grid(alpha=0.3)
    if any(c.summary.status == PRUNED for c, _ in points):
        fig.axes[0].set_title("x: pruned (best PER before pruning)", fontsize=8, loc="left")
    fig.tight_layout()
    return png_bytes(fig)


def plot_curves(children: list[SweepChild]) -> bytes:
    """Every child's evaluation PER against the batch: pruned children dashed, ending in x."""
    fig = new_figure((8.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for child in children:
        if not child.curve:
            continue
        steps, pers = zip(*child.curve, strict=False)
        pruned = child.summary.status == PRUNED
        (line,) = ax.plot(
            steps,
            pers,
            linestyle="--" if pruned else "-",
            alpha=0.6 if pruned else 0.9,
            label=child.summary.name + (" (pruned)" if pruned else ""),
        )
        if pruned:
            ax.plot(steps[-1], pers[-1], marker="x", color=line.get_color())
    ax.set_xlabel("batch")
    ax.set_ylabel("evaluation PER")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, ncol=2 if len(children) > 8 else 1)
    else:
        ax.text(0.5, 0.5, "no child has evaluated yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return png_bytes(fig)


def _verdict_rows(child: SweepChild) -> list[list[str]]:
    folder = child.summary.folder
    try:
        config = validate(read_config(folder), origin=str(folder / "config.yaml"))
    except Brain2TextError as exc:
        return [[child.summary.name, "-", "unreadable config", str(exc)]]
    rows = read_metrics(folder)
    verdicts = judge(config, rows, reference_rows(config, folder))
    if not verdicts:
        return [[child.summary.name, "-", "no criteria set", ""]]
    return [[child.summary.name, v.name, v.status, v.figure] for v in verdicts]


def build_page(
    out_dir: Path, record: dict[str, Any], children: list[SweepChild], figure: bytes, curves: bytes
) -> str:
    header, rows = table_rows([c.summary for c in children], out_dir)
    classes = ["pruned" if c.summary.status == PRUNED else "" for c in children]
    n_pruned = sum(c.summary.status == PRUNED for c in children)
    searched = record.get("grid") or record.get("space") or {}
    facts = [
        ["kind", record.get("kind", "grid")],
        ["run file", record.get("run_file", "-")],
        ["overrides", " ".join(record.get("overrides", [])) or "-"],
        ["searched", json.dumps(searched)],
        ["children", str(len(children))],
        ["pruned", f"{n_pruned} (greyed: stopped by the pruner, never finished)"],
    ]
    for key in ("seeds", "n_trials", "storage", "study", "prune_startup"):
        if key in record:
            facts.append([key, str(record[key])])
    verdicts = [row for c in children for row in _verdict_rows(c)]
    title = html.escape(f"sweep {out_dir.name}")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{CSS}
{PAGE_CSS}</style></head>
<body><h1>{title}</h1>
{html_table(None, facts)}
<h2>Children</h2>
{html_table(header, rows, classes) if rows else "<p>no child has started yet</p>"}
<h2>Best PER against each varied key</h2>
{image(FIGURE_FILE, figure)}
<h2>Evaluation curves</h2>
{image(CURVES_FILE, curves)}
<h2>Verdicts</h2>
{html_table(["child", "criterion", "status", "figure"], verdicts)}
</body></html>
"""


def write_sweep_outputs(out_dir: Path) -> Path:
    """Write sweep.png, sweep_curves.png and sweep.html; returns the page's path."""
    out_dir = Path(out_dir)
    record = read_sweep(out_dir)
    varied = [str(k) for k in record.get("varied", [])]
    children = sweep_children(out_dir, varied)
    figure, curves = plot_per_against_keys(children, varied), plot_curves(children)
    atomic_write_bytes(out_dir / FIGURE_FILE, lambda f: f.write(figure))
    atomic_write_bytes(out_dir / CURVES_FILE, lambda f: f.write(curves))
    atomic_write_text(out_dir / PAGE_FILE, build_page(out_dir, record, children, figure, curves))
    return out_dir / PAGE_FILE
