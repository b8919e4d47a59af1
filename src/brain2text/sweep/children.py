"""A sweep's children: each a normal run folder trained with the sweep's run file, its
``key=value`` overrides and the child's own values; how one is trained or resumed; the sweep
record; and the best child written out as a run file of its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from brain2text.atomic import atomic_write_text
from brain2text.config import (
    RunConfig,
    config_differences,
    load_run,
    parse_override,
    validate,
)
from brain2text.errors import Brain2TextError, ConfigError
from brain2text.reports.listing import SWEEP_FILE
from brain2text.runs.folder import read_config, read_record
from brain2text.training.loop import (
    FINISHED,
    PRUNED,
    STOPPED_EARLY,
    OnEvaluation,
    RunOutcome,
    resume,
    train,
)

ENDED = (FINISHED, STOPPED_EARLY, PRUNED)  # a sweep started again does not train these again
BEST_FILE = "best.yaml"


@dataclass(frozen=True)
class Child:
    name: str  # its folder under the sweep's, and its run name
    values: dict[str, Any]  # dotted key -> the value this child gives it
    config: RunConfig


def value_overrides(values: dict[str, Any]) -> list[str]:
    """``{"optim.max_lr": 0.006}`` -> ``["optim.max_lr=0.006"]`` (read back as YAML)."""
    return [f"{k}={json.dumps(v)}" for k, v in values.items()]


def child_arguments(
    name: str, values: dict[str, Any], overrides: list[str], parent: str | None = None
) -> list[str]:
    """The overrides that make the child from the run file (``brain2text train`` takes them)."""
    return [
        *overrides,
        *value_overrides(values),
        f"name={json.dumps(name)}",
        *([f"parent={json.dumps(parent)}"] if parent else []),
    ]


def make_child(
    run_file: Path | str,
    name: str,
    values: dict[str, Any],
    overrides: list[str],
    parent: str | None = None,
) -> Child:
    """The child's resolved config, its ``parent`` the run it varies (the run file's name, by
    default); a key that does not exist or a value of the wrong type raises a ConfigError
    naming it."""
    parent = parent or load_run(run_file, overrides).name
    arguments = child_arguments(name, values, overrides, parent)
    return Child(name, dict(values), load_run(run_file, arguments))


def child_status(folder: Path) -> str | None:
    return (read_record(folder) or {}).get("status")


def check_folder(child: Child, folder: Path) -> None:
    """A child folder that holds another run (a different config) stops the sweep before any
    child starts, naming the first key that differs."""
    if not (folder / "config.yaml").is_file():
        return
    try:
        stored = validate(read_config(folder), origin=str(folder / "config.yaml"))
    except Brain2TextError:
        return  # unreadable: an unfinished first attempt, trained afresh
    if stored != child.config:
        key, (given, had) = config_differences([child.config.to_dict(), stored.to_dict()])[0]
        raise ConfigError(
            f"{folder}: holds a run with {key}={had}, this sweep gives {given}; "
            "choose another --out"
        )


def train_child(
    child: Child, folder: Path, *, quiet: bool, on_evaluation: OnEvaluation | None = None
) -> RunOutcome:
    """Continue the child from its ``last.pt`` (refusing a folder whose run differs), or train
    it afresh over whatever an unfinished first attempt left."""
    if (folder / "checkpoints" / "last.pt").is_file():
        return resume(folder, quiet=quiet, expected=child.config, on_evaluation=on_evaluation)
    return train(child.config, folder, overwrite=True, quiet=quiet, on_evaluation=on_evaluation)


def write_record(out_dir: Path, record: dict[str, Any], *, same: tuple[str, ...]) -> None:
    """``OUT/sweep.json``; a folder that holds another kind of sweep, or one whose ``same``
    entries differ, is refused (its children would not be comparable)."""
    path = out_dir / SWEEP_FILE
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict):
        for key in ("kind", *same):
            if key in old and old[key] != record[key]:
                raise ConfigError(
                    f"{out_dir}: holds a sweep with {key} {old[key]!r}, this one "
                    f"has {record[key]!r}; choose another --out"
                )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def write_best_run_file(
    out_dir: Path,
    run_file: Path | str,
    base_name: str,
    overrides: list[str],
    best: Child,
    per: float,
) -> Path:
    """``OUT/best.yaml``: the best child as a run file naming the sweep's run file as its
    parent and listing only what it changes."""
    changes: dict[str, Any] = {}
    for text in [*overrides, *value_overrides(best.values)]:
        keys, value = parse_override(text)
        node = changes
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    changes.pop("name", None)
    changes.pop("parent", None)
    ref = str(run_file)
    parent = (
        ref
        if len(Path(ref).parts) == 1 and not ref.endswith((".yaml", ".yml"))
        else str(Path(ref).resolve())
    )
    path = out_dir / BEST_FILE
    text = (
        f"# brain2text train {path}\n#\n# The best child of the sweep in {out_dir} "
        f"({best.name}): best evaluation PER {per:.4f}.\n"
        + yaml.safe_dump(
            {
                "name": f"{base_name}-{best.name}",
                "parent": parent,
                "description": f"best child ({best.name}) of the sweep in {out_dir}",
                **changes,
            },
            sort_keys=False,
        )
    )
    atomic_write_text(path, text)
    return path
