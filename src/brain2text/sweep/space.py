"""An Optuna search space file: dotted config keys, each a range or a list of choices.

    optim.max_lr: {low: 0.004, high: 0.015, log: true}
    augment.white_noise_sd: {low: 0.1, high: 0.8}
    model.n_layers: {low: 3, high: 5}            # both ends integers: an integer range
    train.ema_decay: {choices: [null, 0.999, 0.9995]}

A range may also give ``step`` (a grid inside the range; not with ``log``). Each entry becomes
an Optuna distribution; a malformed one is an error naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial

from brain2text.errors import ConfigError

RANGE_KEYS = {"low", "high", "log", "step"}
Distribution = CategoricalDistribution | IntDistribution | FloatDistribution


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _distribution(where: str, entry: Any) -> Distribution:
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{where}: give {{low: .., high: ..}} or {{choices: [..]}}, not {entry!r}"
        )
    if "choices" in entry:
        if set(entry) != {"choices"}:
            raise ConfigError(
                f"{where}: choices take no other setting (got {sorted(set(entry) - {'choices'})})"
            )
        choices = entry["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list")
        if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise ConfigError(f"{where}: choices must be numbers, strings, booleans or null")
        if len(set(map(repr, choices))) < len(choices):
            raise ConfigError(f"{where}: a choice is listed twice")
        return CategoricalDistribution(choices)
    unknown = set(entry) - RANGE_KEYS
    if unknown or "low" not in entry or "high" not in entry:
        raise ConfigError(
            f"{where}: a range takes low, high and optionally log and step (got {sorted(entry)})"
        )
    low, high, log, step = entry["low"], entry["high"], entry.get("log", False), entry.get("step")
    if not (_number(low) and _number(high)):
        raise ConfigError(f"{where}: low and high must be numbers (got {low!r}, {high!r})")
    if not low < high:
        raise ConfigError(f"{where}: empty range (low {low} is not below high {high})")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false (got {log!r})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0 (got {low})")
    if step is not None and (log or not _number(step) or step <= 0):
        raise ConfigError(f"{where}: step must be a positive number, and not with log")
    if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(
        float(low), float(high), log=log, step=None if step is None else float(step)
    )


def load_space(path: Path | str) -> dict[str, Distribution]:
    """The space file as {dotted key: Optuna distribution}, in the file's order."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--space {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--space {path}: not valid YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"--space {path}: expected a mapping of dotted keys to ranges, e.g. "
            "'optim.max_lr: {low: 0.004, high: 0.015, log: true}'"
        )
    return {str(key): _distribution(f"{path}: {key}", entry) for key, entry in data.items()}


def probe_values(distribution: Distribution) -> list[Any]:
    """Values that between them try every type the distribution can give a config."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.low, distribution.high]


def suggest(trial: Trial, key: str, distribution: Distribution) -> Any:
    """The trial's value for ``key`` (an enqueued or retried trial's own value when it has one)."""
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(key, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            key, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    return trial.suggest_float(
        key, distribution.low, distribution.high, step=distribution.step, log=distribution.log
    )


def describe(space: dict[str, Distribution]) -> dict[str, Any]:
    """The space as plain values (for sweep.json)."""
    out: dict[str, Any] = {}
    for key, d in space.items():
        if isinstance(d, CategoricalDistribution):
            out[key] = {"choices": list(d.choices)}
        else:
            out[key] = {
                "low": d.low,
                "high": d.high,
                "log": d.log,
                **({"step": d.step} if d.step not in (None, 1) else {}),
            }
    return out
