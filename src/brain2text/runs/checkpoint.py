"""Checkpoints: written atomically, loaded with ``weights_only`` (no code from the file runs).

A checkpoint holds the resolved run config, so a model can be rebuilt from it alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brain2text.atomic import atomic_write_bytes
from brain2text.errors import DataError, TrainingError

FORMAT = "brain2text-checkpoint"
FORMAT_VERSION = 1


def assert_finite(model: torch.nn.Module, step: int) -> None:
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise TrainingError(
                f"step {step}: parameter {name} holds NaN/Inf; no checkpoint was written "
                "(lower optim.max_lr or set optim.grad_clip_norm)"
            )


def save_checkpoint(path: Path, model: torch.nn.Module, state: dict[str, Any], step: int) -> None:
    """Save model weights with ``state`` (config, optimizer, ...) after checking they are finite."""
    assert_finite(model, step)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": step,
        "model": model.state_dict(),
        **state,
    }
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, wrong file type, refused object ...
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path}: not a brain2text checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: checkpoint format version {payload.get('format_version')} "
            f"is not supported (expected {FORMAT_VERSION})"
        )
    return payload
