"""``brain2text sweep RUN_FILE --grid KEY=V1,V2 ... [--seeds N]``: a family of runs.

Every combination of the grid's values (times ``--seeds`` seeds) is a child run: a normal run
folder ``OUT/<child>/`` trained with the run file, the sweep's ``key=value`` overrides and its
own grid values, so ``brain2text runs OUT`` lists them (with the varied keys as columns) and
``evaluate``, ``report`` and ``compare`` work on each. Every child's config is resolved before
the first one starts, so a key that does not exist or a value of the wrong type stops the sweep
at once. ``OUT/sweep.json`` records the grid; ``OUT/sweep.png`` draws each child's best PER
against each varied key, and ``OUT/best.yaml`` the best child as a run file (parent: the
sweep's run file; only its changes listed).

Started again with the same arguments, a sweep skips the children that finished and continues
an interrupted one from its ``last.pt`` (as ``train --auto-resume`` does); a child whose config
no longer matches is an error, never silently replaced.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from brain2text.atomic import atomic_write_text
from brain2text.config import RunConfig, load_run, parse_override
from brain2text.errors import ConfigError
from brain2text.reports.listing import summarize_run
from brain2text.reports.sweep import SWEEP_FILE, write_sweep_plot
from brain2text.runs.folder import read_record
from brain2text.training.loop import FINISHED, INTERRUPTED, STOPPED_EARLY, resume, train

ENDED = (FINISHED, STOPPED_EARLY)


@dataclass(frozen=True)
class Child:
    name: str  # its folder under the sweep's
    values: dict[str, Any]  # grid key -> value (and "train.seed" with --seeds)
    config: RunConfig


def parse_grid(grids: list[str]) -> dict[str, list[Any]]:
    """``["optim.max_lr=0.006,0.008"]`` -> ``{"optim.max_lr": [0.006, 0.008]}`` (YAML values)."""
    grid: dict[str, list[Any]] = {}
    for text in grids:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,..., e.g. "
                              "optim.max_lr=0.006,0.008")
        if key.strip() in grid:
            raise ConfigError(f"--grid {key.strip()}: given twice")
        grid[key.strip()] = [parse_override(f"{key}={v}")[1] for v in raw.split(",")]
    return grid


def _label(key: str, value: Any) -> str:
    return f"{key.rsplit('.', 1)[-1]}={value}"


def plan_children(run_file: Path | str, grid: dict[str, list[Any]], seeds: int,
                  overrides: list[str]) -> list[Child]:
    """Every child, its config resolved (a bad key or value stops here, naming it)."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give 1 or more")
    base = load_run(run_file, overrides)
    keys = list(grid)
    children = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        for seed in range(seeds):
            values = dict(zip(keys, combo))
            if seeds > 1:
                values["train.seed"] = base.train.seed + seed
            name = "-".join(_label(k, v) for k, v in values.items()) or base.name
            child_overrides = [*overrides, *(f"{k}={json.dumps(v)}" for k, v in values.items())]
            config = load_run(run_file, child_overrides)
            children.append(Child(name, values, config.model_copy(update={"name": name})))
    return children


def run_sweep(run_file: Path | str, grid: dict[str, list[Any]], *, seeds: int = 1,
              overrides: list[str] | None = None, out_dir: Path | None = None,
              quiet: bool = False) -> tuple[Path, bool]:
    """Train every child not finished yet, one after another; returns the sweep folder and
    whether a signal interrupted it (then the same call goes on where it stopped)."""
    overrides = list(overrides or [])
    children = plan_children(run_file, grid, seeds, overrides)
    base = load_run(run_file, overrides)
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / f"{base.name}-sweep"
    out_dir.mkdir(parents=True, exist_ok=True)
    varied = list(grid) + (["train.seed"] if seeds > 1 else [])
    record = {"run_file": str(run_file), "overrides": overrides, "grid": grid, "seeds": seeds,
              "varied": varied, "children": {c.name: c.values for c in children}}
    atomic_write_text(out_dir / SWEEP_FILE, json.dumps(record, indent=2) + "\n")
    for k, child in enumerate(children, start=1):
        folder = out_dir / child.name
        status = (read_record(folder) or {}).get("status")
        if status in ENDED:
            print(f"[{k}/{len(children)}] {child.name}: {status}, skipped")
            continue
        print(f"[{k}/{len(children)}] {child.name}", flush=True)
        if (folder / "checkpoints" / "last.pt").is_file():
            outcome = resume(folder, quiet=quiet, expected=child.config)
        else:
            outcome = train(child.config, folder, overwrite=True, quiet=quiet)
        if outcome.status == INTERRUPTED:
            print(f"sweep interrupted in {child.name}; run the same command again to go on")
            write_sweep_plot(out_dir)
            return out_dir, True
    write_sweep_plot(out_dir)
    write_best_run_file(out_dir, run_file, base.name, overrides, children)
    return out_dir, False


def write_best_run_file(out_dir: Path, run_file: Path | str, base_name: str,
                        overrides: list[str], children: list[Child]) -> Path | None:
    """``OUT/best.yaml``: the child of the lowest best PER as a run file naming the sweep's run
    file as its parent and listing only what it changes."""
    scored = [(summarize_run(out_dir / c.name).best_per, c) for c in children]
    scored = [(per, c) for per, c in scored if per is not None]
    if not scored:
        return None
    per, best = min(scored, key=lambda pc: pc[0])
    changes: dict[str, Any] = {}
    for text in [*overrides, *(f"{k}={json.dumps(v)}" for k, v in best.values.items())]:
        keys, value = parse_override(text)
        node = changes
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    ref = str(run_file)
    parent = ref if len(Path(ref).parts) == 1 and not ref.endswith((".yaml", ".yml")) \
        else str(Path(ref).resolve())
    name = f"{base_name}-{best.name}"
    text = (f"# brain2text train {out_dir / 'best.yaml'}\n#\n# The best child of the sweep in "
            f"{out_dir}: best evaluation PER {per:.4f}.\n"
            + yaml.safe_dump({"name": name, "parent": parent,
                              "description": f"best child of the sweep in {out_dir}", **changes},
                             sort_keys=False))
    atomic_write_text(out_dir / "best.yaml", text)
    return out_dir / "best.yaml"
