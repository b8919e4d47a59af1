"""A sweep's figure: each child's best evaluation PER against each varied key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from brain2text.atomic import atomic_write_bytes
from brain2text.errors import DataError
from brain2text.plotting import new_figure, png_bytes
from brain2text.reports.listing import SWEEP_FILE, summarize_run

FIGURE_FILE = "sweep.png"


def read_sweep(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / SWEEP_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable sweep record ({type(exc).__name__})") from None
    return record


def _position(value: Any) -> float | str:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def write_sweep_plot(out_dir: Path) -> Path:
    """``OUT/sweep.png``: one panel per varied key, a point per child that has a best PER."""
    out_dir = Path(out_dir)
    record = read_sweep(out_dir)
    varied = record["varied"] or ["(none)"]
    points = []
    for name, values in record["children"].items():
        summary = summarize_run(out_dir / name) if (out_dir / name).is_dir() else None
        if summary is not None and summary.best_per is not None:
            points.append((values, summary.best_per))
    fig = new_figure((4.0 * len(varied), 3.2))
    for i, key in enumerate(varied):
        ax = fig.add_subplot(1, len(varied), i + 1)
        xs = [_position(v.get(key, "-")) for v, _ in points]
        if xs and all(isinstance(x, (int, float)) for x in xs):
            ax.scatter(xs, [p for _, p in points], color="tab:blue")
            if key.endswith("lr") and min(xs) > 0:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: no overlap
        elif xs:  # categorical values (null, strings): in order of first appearance
            labels = list(dict.fromkeys(map(str, xs)))
            ax.scatter([labels.index(str(x)) for x in xs], [p for _, p in points])
            ax.set_xticks(range(len(labels)), labels)
        else:
            ax.text(0.5, 0.5, "no child has evaluated yet", ha="center", transform=ax.transAxes)
        ax.set_xlabel(key)
        ax.set_ylabel("best evaluation PER")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png = png_bytes(fig)
    atomic_write_bytes(out_dir / FIGURE_FILE, lambda f: f.write(png))
    return out_dir / FIGURE_FILE
