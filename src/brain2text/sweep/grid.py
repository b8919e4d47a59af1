"""``brain2text sweep RUN_FILE --grid KEY=V1,V2 ... [--seeds N] [--workers K]``: every
combination of the grid's values (times ``--seeds`` seeds) is a child run ``OUT/<child>/``.

Every child's config is resolved before the first one starts, so a key that does not exist or a
value of the wrong type stops the sweep at once. The children train one after another in this
process, or ``--workers K`` at a time as ``brain2text train`` processes
(:mod:`brain2text.sweep.processes`). Started again with the same arguments, a sweep skips the
children that ended and continues an interrupted one from its ``last.pt``; a child whose folder
holds a different run is an error, never silently replaced. A child that fails (a NaN stop,
say) is reported and the others go on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brain2text.config import load_run, parse_override
from brain2text.errors import ConfigError, TrainingError
from brain2text.reports.listing import summarize_run
from brain2text.reports.sweep import write_sweep_outputs
from brain2text.sweep.children import (
    ENDED,
    Child,
    check_folder,
    child_arguments,
    child_status,
    make_child,
    train_child,
    write_best_run_file,
    write_record,
)
from brain2text.sweep.processes import Job, run_jobs
from brain2text.training.loop import INTERRUPTED


@dataclass(frozen=True)
class SweepOutcome:
    out_dir: Path
    interrupted: bool = False
    failed: dict[str, str] = field(default_factory=dict)  # child -> what went wrong


def parse_grid(grids: list[str]) -> dict[str, list[Any]]:
    """``["optim.max_lr=0.006,0.008"]`` -> ``{"optim.max_lr": [0.006, 0.008]}`` (YAML values)."""
    grid: dict[str, list[Any]] = {}
    for text in grids:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(
                f"--grid {text!r}: expected KEY=V1,V2,..., e.g. optim.max_lr=0.006,0.008"
            )
        if key.strip() in grid:
            raise ConfigError(f"--grid {key.strip()}: given twice")
        grid[key.strip()] = [parse_override(f"{key}={v}")[1] for v in raw.split(",")]
    return grid


def _label(key: str, value: Any) -> str:
    return f"{key.rsplit('.', 1)[-1]}={value}"


def plan_children(
    run_file: Path | str, grid: dict[str, list[Any]], seeds: int, overrides: list[str]
) -> list[Child]:
    """Every child, its config resolved (a bad key or value stops here, naming it)."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give 1 or more")
    base = load_run(run_file, overrides)
    keys = list(grid)
    children = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        for seed in range(seeds):
            values = dict(zip(keys, combo, strict=False))
            if seeds > 1:
                values["train.seed"] = base.train.seed + seed
            name = "-".join(_label(k, v) for k, v in values.items()) or base.name
            children.append(make_child(run_file, name, values, overrides, base.name))
    return children


def run_sweep(
    run_file: Path | str,
    grid: dict[str, list[Any]],
    *,
    seeds: int = 1,
    overrides: list[str] | None = None,
    out_dir: Path | None = None,
    workers: int = 1,
    quiet: bool = False,
) -> SweepOutcome:
    """Train every child that has not ended yet; the same call goes on where a signal
    stopped it."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more")
    overrides = list(overrides or [])
    children = plan_children(run_file, grid, seeds, overrides)
    base = load_run(run_file, overrides)
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / f"{base.name}-sweep"
    varied = list(grid) + (["train.seed"] if seeds > 1 else [])
    todo, done = [], []
    for child in children:
        status = child_status(out_dir / child.name)
        if status in ENDED:
            done.append(f"{child.name}: {status}, skipped")
        else:
            check_folder(child, out_dir / child.name)
            todo.append(child)
    write_record(
        out_dir,
        {
            "kind": "grid",
            "run_file": str(run_file),
            "overrides": overrides,
            "grid": grid,
            "seeds": seeds,
            "varied": varied,
            "children": {c.name: c.values for c in children},
        },
        same=(),
    )
    for line in done:
        print(line)
    print(
        f"{len(todo)} of {len(children)} children to train"
        + (f", {workers} at a time" if workers > 1 and todo else ""),
        flush=True,
    )
    if workers == 1:
        outcome = _one_after_another(todo, out_dir, quiet)
    else:
        outcome = _in_processes(todo, out_dir, run_file, overrides, workers)
    write_sweep_outputs(out_dir)
    if not outcome.interrupted:
        _write_best(out_dir, run_file, base.name, overrides, children)
    return outcome


def _one_after_another(children: list[Child], out_dir: Path, quiet: bool) -> SweepOutcome:
    failed = {}
    for child in children:
        print(f"{child.name}: training", flush=True)
        try:
            outcome = train_child(child, out_dir / child.name, quiet=quiet)
        except TrainingError as exc:  # the child's run.json says "failed"; the others go on
            print(f"{child.name}: failed: {exc}", flush=True)
            failed[child.name] = str(exc)
            continue
        if outcome.status == INTERRUPTED:
            print(f"sweep interrupted in {child.name}; run the same command again to go on")
            return SweepOutcome(out_dir, True, failed)
        write_sweep_outputs(out_dir)
    return SweepOutcome(out_dir, False, failed)


def _in_processes(
    children: list[Child], out_dir: Path, run_file: Path | str, overrides: list[str], workers: int
) -> SweepOutcome:
    jobs = [
        Job(
            c.name,
            [
                "train",
                str(run_file),
                *child_arguments(c.name, c.values, overrides, c.config.parent),
                "--out",
                str(out_dir / c.name),
                "--auto-resume",
                "--overwrite",
                "--quiet",
            ],
        )
        for c in children
    ]

    def ended(job: Job, code: int) -> None:
        summary = summarize_run(out_dir / job.name)
        per = "-" if summary.best_per is None else f"{summary.best_per:.4f}"
        print(f"{job.name}: {summary.status} (exit {code}), best PER {per}", flush=True)
        write_sweep_outputs(out_dir)

    result = run_jobs(jobs, workers, out_dir / "logs", on_end=ended)
    if result.interrupted:
        print("sweep interrupted; run the same command again to go on")
    return SweepOutcome(out_dir, result.interrupted, result.failed)


def _write_best(
    out_dir: Path, run_file: Path | str, base_name: str, overrides: list[str], children: list[Child]
) -> Path | None:
    scored = [
        (summarize_run(out_dir / c.name).best_per, c)
        for c in children
        if (out_dir / c.name).is_dir()
    ]
    ranked = [(per, c) for per, c in scored if per is not None]
    if not ranked:
        return None
    per, best = min(ranked, key=lambda pc: pc[0])
    return write_best_run_file(out_dir, run_file, base_name, overrides, best, per)
