"""The one plotting set-up: matplotlib's object API on an Agg canvas (no pyplot, no global
backend switch at import), PNG bytes out, and the trailing moving average curves are drawn
with."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure with its own Agg canvas, independent of any other figure or backend."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def moving_average(values, window: int) -> np.ndarray:
    """Trailing moving average over the finite values of the last ``window`` points (the first
    points average what exists so far; NaN where a window holds no finite value)."""
    values = np.asarray(values, dtype=np.float64)
    window = max(int(window), 1)
    ok = np.isfinite(values)
    sums = np.cumsum(np.where(ok, values, 0.0))
    counts = np.cumsum(ok)

    def lagged(a: np.ndarray) -> np.ndarray:  # a shifted right by `window`, zero-filled
        return np.concatenate([np.zeros(window), a[:-window]])[: len(a)]

    n = counts - lagged(counts)
    return np.where(n > 0, (sums - lagged(sums)) / np.maximum(n, 1), np.nan)
