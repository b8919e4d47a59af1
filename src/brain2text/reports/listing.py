"""``brain2text runs``: one line per run folder, read from run.json, config.yaml and metrics.jsonl.

Reading is tolerant: a run that is still being written (partial last metrics line) or whose
run.json is corrupt or missing is listed, never a reason to stop. A run folder is any folder,
up to ``MAX_DEPTH`` levels below the root, holding a run.json or a metrics.jsonl.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

from brain2text.config import RunConfig, flatten, validate
from brain2text.errors import Brain2TextError, DataError
from brain2text.reports.criteria import MET, judge
from brain2text.runs import metric_keys as mk
from brain2text.runs.folder import read_config, read_record, status_of
from brain2text.runs.runlog import read_metrics

MAX_DEPTH = 3
RUN_MARKERS = ("run.json", mk.METRICS_FILE)
SWEEP_FILE = "sweep.json"  # a sweep folder's record (brain2text sweep)
UNREADABLE = "unreadable"


# ----------------------------------------------------------------------------- reading


def find_run_dirs(root: Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Folders holding a run marker, ``root`` itself included; a run folder's own subfolders
    (checkpoints/, eval/, tensorboard/) are not searched."""
    if any((root / m).is_file() for m in RUN_MARKERS):
        return [root]
    if max_depth == 0:
        return []
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.extend(find_run_dirs(child, max_depth - 1))
    return found


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def eval_curve(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, PER) of every evaluation row, on whichever split the run evaluated."""
    for split in mk.EVAL_SPLITS:
        curve = series(rows, mk.per(split))
        if curve:
            return curve
    return []


def series(rows: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) of the rows holding a finite ``key``."""
    return [(int(r[mk.STEP]), float(r[key])) for r in rows if key in r and _finite(r[key])]


def find_reference_run(run: str, run_dir: Path | None = None) -> Path | None:
    """The folder ``criteria.faster_than.run`` names: an absolute path, or a path relative to
    the working directory or to a folder above the judged run's (``runs/run11`` beside
    ``runs/run13``, from anywhere); None when no such folder exists."""
    path = Path(run)
    if path.is_absolute():
        return path if path.is_dir() else None
    bases = [Path.cwd()]
    if run_dir is not None:
        bases += Path(run_dir).resolve().parents
    return next((base / path for base in bases if (base / path).is_dir()), None)


def reference_rows(config: RunConfig, run_dir: Path | None = None) -> list[dict] | None:
    """The metrics rows of ``criteria.faster_than.run`` (looked up by
    :func:`find_reference_run`), None when that run cannot be read."""
    ft = config.criteria.faster_than
    if ft is None:
        return None
    path = find_reference_run(ft.run, run_dir)
    return (read_metrics(path) or None) if path is not None else None


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class RunSummary:
    folder: Path
    name: str
    parent: str | None
    status: str
    batches: int  # last logged step + 1
    best_per: float | None
    best_step: int | None
    final_per: float | None
    wall_s: float | None
    samples_per_s: float | None  # median over batches
    verdicts: str | None = None  # "2/4 met" when brain2text.reports.criteria is installed


def _verdicts(run_dir: Path, rows: list[dict[str, Any]]) -> str:
    """ "k/n met" of the run's success criteria; "-" when it sets none or its config is gone."""
    try:
        config = validate(read_config(run_dir), origin=str(run_dir / "config.yaml"))
    except Brain2TextError:  # missing, unreadable or no longer valid config.yaml
        return "-"
    results = judge(config, rows)
    if not results:
        return "-"  # the run sets no criteria
    met = sum(r.status == MET for r in results)
    return f"{met}/{len(results)} met"


def elapsed_since(started: object) -> float | None:
    """Seconds since a run.json ``started`` stamp (local time, as train writes it)."""
    try:
        start = datetime.strptime(str(started), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return max((datetime.now() - start).total_seconds(), 0.0)


def summarize_run(run_dir: Path) -> RunSummary:
    record = read_record(run_dir)
    rows = read_metrics(run_dir)
    steps = [r[mk.STEP] for r in rows if isinstance(r.get(mk.STEP), int)]
    curve = eval_curve(rows)
    best = min(curve, key=lambda point: point[1]) if curve else None
    speeds = [v for _, v in series(rows, mk.SAMPLES_PER_S)]
    wall = record.get("wall_s") if record else None
    if record and record.get("status") == "running":
        wall = elapsed_since(record.get("started"))  # run.json's wall_s is from its start
    return RunSummary(
        folder=run_dir,
        name=str(record.get("name") or run_dir.name) if record else run_dir.name,
        parent=record.get("parent") if record else None,
        status=status_of(run_dir, record) if record else UNREADABLE,
        batches=max(steps) + 1 if steps else 0,
        best_per=best[1] if best else None,
        best_step=best[0] if best else None,
        final_per=curve[-1][1] if curve else None,
        wall_s=float(wall) if _finite(wall) else None,
        samples_per_s=statistics.median(speeds) if speeds else None,
        verdicts=_verdicts(run_dir, rows) if record else None,
    )


def collect_runs(root: Path) -> list[RunSummary]:
    """One summary per run folder under ``root``, sorted by run name (then folder)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such runs folder")
    runs = [summarize_run(d) for d in find_run_dirs(root)]
    return sorted(runs, key=lambda r: (r.name, str(r.folder)))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def sweep_varied(root: Path) -> list[str]:
    """A sweep folder's varied keys (none outside a sweep)."""
    try:
        return [str(k) for k in json.loads((Path(root) / SWEEP_FILE).read_text())["varied"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def varied_values(run_dir: Path, varied: list[str]) -> dict[str, Any]:
    """The run's own values of a sweep's varied keys, read from its config.yaml."""
    try:
        flat = flatten(read_config(run_dir))
    except DataError:
        return {}
    return {k: flat[k] for k in varied if k in flat}


TABLE_HEADER = [
    "run",
    "parent",
    "status",
    "batches",
    "best PER",
    "at step",
    "final PER",
    "wall",
    "samples/s",
    "folder",
    "verdicts",
]


def table_rows(runs: list[RunSummary], root: Path) -> tuple[list[str], list[list[str]]]:
    """The table's header and cells; in a sweep folder, its varied keys as the last columns."""
    varied = sweep_varied(root)
    rows = []
    for r in runs:
        folder = r.folder.relative_to(root) if r.folder.is_relative_to(root) else r.folder
        values = varied_values(r.folder, varied) if varied else {}
        rows.append(
            [
                r.name,
                r.parent or "-",
                r.status,
                str(r.batches),
                _fmt(r.best_per, ".4f"),
                _fmt(r.best_step, "d"),
                _fmt(r.final_per, ".4f"),
                _duration(r.wall_s),
                _fmt(r.samples_per_s, ".1f"),
                str(folder),
                r.verdicts or "-",
                *(_value(values.get(k, "-")) for k in varied),
            ]
        )
    return [*TABLE_HEADER, *varied], rows


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def runs_table(runs: list[RunSummary], root: Path) -> str:
    """One aligned line a run; in a sweep folder, its varied keys as columns."""
    return format_table(*table_rows(runs, root))
