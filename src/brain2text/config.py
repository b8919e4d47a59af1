"""Typed run configuration (the sections are in :mod:`brain2text.sections`), loaded from YAML
run files.

A run file is a path, or the name of a run file shipped with the package
(``brain2text/configs/runs/<name>.yaml``; ``brain2text config --list`` shows them). A run file
may name a ``parent`` run and hold only what it changes; the parent is looked up as
``<parent>.yaml`` beside the child, then among the packaged run files (or given as a path).
Command-line overrides use dotted keys (``train.n_batch=50``) whose values are parsed as YAML.
Unknown keys and bad values fail with a one-line :class:`~brain2text.errors.ConfigError` naming
the key; so does a config that training cannot run (:func:`brain2text.sections.unrunnable`),
when a run file is resolved to be trained (:func:`load_run`).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from brain2text.errors import ConfigError
from brain2text.sections import (  # noqa: F401  (the sections are part of this module's API)
    RUNNABLE,
    AdaptConfig,
    AugmentConfig,
    CriteriaConfig,
    DataConfig,
    EvalConfig,
    FasterThanConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    TtaConfig,
    WatchConfig,
    WordDecodingConfig,
)

# ----------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: run file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run file must be a mapping of sections")
    return data


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def packaged_run_files() -> dict[str, Path]:
    """Run name -> file of the run files shipped inside the package, sorted by name."""
    folder = Path(str(resources.files("brain2text") / "configs" / "runs"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def _is_name(ref: str) -> bool:
    return len(Path(ref).parts) == 1 and Path(ref).suffix not in (".yaml", ".yml")


def find_run_file(ref: Path | str) -> Path:
    """A run file given as a path, or as the name of a packaged run file."""
    path = Path(ref)
    if path.is_file():
        return path
    if _is_name(str(ref)):
        packaged = packaged_run_files()
        if str(ref) in packaged:
            return packaged[str(ref)]
        raise ConfigError(
            f"{ref}: no such run file, nor a packaged run of that name "
            f"(packaged: {', '.join(packaged)})"
        )
    raise ConfigError(f"{path}: run file not found")


def _parent_path(child: Path, parent: str) -> Path:
    candidate = Path(parent)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate if candidate.is_absolute() else child.parent / candidate
    beside = child.parent / f"{parent}.yaml"
    if beside.is_file() or not _is_name(parent):
        return beside
    return packaged_run_files().get(parent, beside)


def _resolve_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The run file merged over its chain of parents (``parent`` is kept from the child)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(p.stem for p in (*seen, path))
        raise ConfigError(f"{path}: parent cycle ({chain})")
    data = _read_yaml(path)
    data.setdefault("name", path.stem)
    parent = data.get("parent")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: parent: must be a run name or a path")
    base = _resolve_file(_parent_path(path, parent), (*seen, path))
    base.pop("name", None)
    base.pop("description", None)
    base.pop("parent", None)
    return _merge(base, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.n_batch=50`` -> (["train", "n_batch"], 50)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.n_batch=50")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = _merge({}, data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None and key in RunConfig.model_fields:
                child = node[key] = {}
            if not isinstance(child, dict):
                dotted = ".".join(keys[: i + 1])
                raise ConfigError(f"override {text!r}: unknown section {dotted!r}")
            node = child
        node[keys[-1]] = value
    return out


def _describe(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    extra = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    if first["type"] == "value_error":  # a section's own check: its message names the keys
        return f"{origin}: {first.get('ctx', {}).get('error', first['msg'])}{extra}"
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{origin}: {key}: {message}{extra}"


def validate(data: dict[str, Any], origin: str = "config", *, runnable: bool = False) -> RunConfig:
    """The config ``data`` describes, or a one-line ConfigError naming the key. ``runnable``:
    also refuse what training cannot run (:func:`brain2text.sections.unrunnable`), as a run
    about to be trained is checked; a stored config of a run that already trained is not."""
    try:
        return RunConfig.model_validate(data, context={RUNNABLE: runnable})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


LR_FIND_KEY = "suggested_max_lr"
"""The key of ``lr_find.json`` that ``optim.max_lr_from`` reads (written by
brain2text.training.lrfind)."""


def read_suggested_max_lr(file: str, origin: str = "config") -> float:
    """The suggested max_lr stored in an ``lr_find.json``; ConfigError naming the file if it is
    missing, unreadable or holds no finite positive suggestion."""
    where = f"{origin}: optim.max_lr_from: {file}"
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"{where}: file not found (run brain2text lr-find first)")
    try:
        value = json.loads(path.read_text()).get(LR_FIND_KEY)
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: not a readable lr_find.json ({type(exc).__name__})") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigError(f"{where}: {LR_FIND_KEY} is {value!r}, not a positive number")
    return float(value)


def load_run(
    path: Path | str, overrides: list[str] | None = None, *, resolve_max_lr: bool = True
) -> RunConfig:
    """Load a run file, resolve its parents, apply dotted overrides and validate.

    With ``optim.max_lr_from`` set (and ``resolve_max_lr``), ``optim.max_lr`` becomes that
    lr_find.json's suggestion; an ``optim.max_lr=`` override alongside it is refused rather than
    silently ignored (override ``optim.max_lr_from=null`` too to set max_lr by hand).
    """
    path = find_run_file(path)
    data = apply_overrides(_resolve_file(path), overrides or [])
    config = validate(data, origin=str(path), runnable=True)
    source = config.optim.max_lr_from
    if not resolve_max_lr or source is None:
        return config
    if any(parse_override(o)[0] == ["optim", "max_lr"] for o in overrides or []):
        raise ConfigError(
            f"{path}: optim.max_lr override conflicts with optim.max_lr_from="
            f"{source} (also override optim.max_lr_from=null)"
        )
    max_lr = read_suggested_max_lr(source, origin=str(path))
    resolved = _merge(config.to_dict(), {"optim": {"max_lr": max_lr}})
    return validate(resolved, origin=str(path), runnable=True)


def to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)


# ----------------------------------------------------------------------------- differences


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"max_lr": 0.02}} -> {"optim.max_lr": 0.02}."""
    flat = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


_MISSING = object()


def config_differences(
    configs: list[dict[str, Any]], ignore: tuple[str, ...] = ()
) -> list[tuple[str, list[Any]]]:
    """(dotted key, one value per config) for every key whose values are not all equal, in the
    order the keys first appear; a key a config lacks gets None. A section set in one config
    and null in another shows by its sub-keys."""
    flats = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for flat in flats for k in flat))
    diffs = []
    for key in keys:
        if key in ignore or any(k.startswith(key + ".") for k in keys):
            continue
        values = [flat.get(key, _MISSING) for flat in flats]
        if any(v != values[0] for v in values[1:]):
            diffs.append((key, [None if v is _MISSING else v for v in values]))
    return diffs
