"""The two log channels of a run: a human log (file + console) and machine metrics (JSONL,
mirrored as TensorBoard scalars under ``<run>/tensorboard`` so ``tensorboard --logdir runs/``
shows every run)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from brain2text.atomic import atomic_write_text
from brain2text.runs.metric_keys import METRICS_FILE

TENSORBOARD_DIR = "tensorboard"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf: keep them readable as "nan", "inf"
    return value


def _scalar(value: Any) -> float | None:
    """A value TensorBoard can plot, or None (strings, bools, NaN/Inf are left to the JSONL)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class RunLog:
    def __init__(self, run_dir: Path, quiet: bool = False, purge_step: int | None = None) -> None:
        """``purge_step``: a resumed run's first step; TensorBoard drops its events from that
        step on (metrics.jsonl is truncated by :func:`truncate_metrics` before)."""
        self.run_dir = run_dir
        self.quiet = quiet
        self._log = open(run_dir / "train.log", "a", buffering=1)
        self._metrics = open(run_dir / METRICS_FILE, "a", buffering=1)
        self._tensorboard = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge_step)

    def info(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"{stamp} {message}\n")
        if not self.quiet:
            tqdm.write(message)

    def metrics(self, row: dict[str, Any]) -> None:
        self._metrics.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
        step = row.get("step")
        for key, value in row.items():
            scalar = _scalar(value)
            if key != "step" and scalar is not None:
                self._tensorboard.add_scalar(key, scalar, global_step=step)

    def close(self) -> None:
        self._log.close()
        self._metrics.close()
        self._tensorboard.close()  # flushes the event file


class SilentLog:
    """The log of a process that writes nothing (ranks other than 0 of a distributed run)."""

    def info(self, message: str) -> None:
        pass

    def metrics(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def truncate_metrics(run_dir: Path, last_step: int) -> int:
    """Keep only the metrics.jsonl rows (batches, evaluations, warnings) with ``step <=
    last_step``, rewritten atomically; a line cut short by a killed process is dropped. Returns
    the number of rows dropped."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= last_step:
            kept.append(line + "\n")
        else:
            dropped += 1
    atomic_write_text(path, "".join(kept))
    return dropped


def _number(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)  # RunLog stores non-finite floats as strings
    return value


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl``, "nan"/"inf" strings turned back into floats.
    Lines that are not JSON objects (the half-written last line of a live or killed run) are
    skipped; a folder without the file has no rows."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append({k: _number(v) for k, v in row.items()})
    return rows
