"""Checks the decoders share: option values and the text files they read, each failure a
one-line error naming the option or the file."""

from __future__ import annotations

import math
from pathlib import Path

from brain2text.errors import ConfigError, DataError


def check_integer(options: object, name: str, low: int, high: int | None = None) -> None:
    """``options.<name>`` must be an int (not a bool) in ``low..high``."""
    value = getattr(options, name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        span = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name}: must be an integer {span}, got {value!r}")


def check_number(
    options: object, name: str, *, positive: bool = False, allow_minus_inf: bool = False
) -> None:
    """``options.<name>`` must be a finite number (positive, or -inf, when asked)."""
    value = getattr(options, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    if allow_minus_inf and value == -math.inf:
        return
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive number" if positive else "a finite number"
        extra = " or -inf" if allow_minus_inf else ""
        raise ConfigError(f"{name}: must be {kind}{extra}, got {value!r}")


def read_utf8(path: Path, what: str) -> tuple[bytes, str]:
    """A UTF-8 text file's bytes and text (``what``: the file's kind, for the messages)."""
    try:
        data = path.read_bytes()
        return data, data.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what} file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc.strerror})") from None
