"""Checkpoints: written atomically, loaded with ``weights_only`` (no code from the file runs).

A checkpoint (:class:`Checkpoint`) holds the weights and the resolved run config, so a model can
be rebuilt from it alone; the training days (the per-day input layers, in order), what a bin's
features are, the latest evaluations, and for a resume point the optimizer, the schedule and
the loop's own state. :func:`save_checkpoint` is the one writer and :func:`load_checkpoint` the
one reader: no other code knows how the file is laid out.

Format versions: 2 keeps the evaluations under one entry; 1 (the first release) kept them as
``eval`` / ``eval_ema`` entries beside the others and still loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from brain2text.atomic import atomic_write_bytes
from brain2text.errors import DataError, TrainingError

FORMAT = "brain2text-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
WEIGHTS = ("raw", "ema")

_V1_EVALUATIONS = ("eval", "eval_ema")  # version 1: the evaluation entries at the top level


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds."""

    step: int  # the training step (batch) the weights are from
    model: dict[str, torch.Tensor]  # the raw weights (a state dict)
    config: dict  # the resolved run config (RunConfig.to_dict())
    days: list[str]  # the training days, in day-index order
    features: dict | None = None  # the data's feature spec, as FeatureSpec.to_dict() gives it
    evaluations: dict = field(default_factory=dict)  # the latest evaluations (training's form)
    ema: dict[str, torch.Tensor] | None = None  # the EMA of the weights (train.ema_decay)
    ema_n_averaged: int | None = None
    optimizer: dict | None = None  # a resume point's optimizer state
    scheduler: dict | None = None  # and its learning-rate schedule
    resume: dict | None = None  # the training loop's own state, in its own form
    format_version: int = FORMAT_VERSION  # of the file it was read from (written: the latest)

    def weights(self, which: str = "raw") -> dict[str, torch.Tensor] | None:
        """The raw weights or their EMA (None when the run kept no EMA)."""
        if which not in WEIGHTS:
            raise DataError(f"--weights {which}: choose one of {', '.join(WEIGHTS)}")
        return self.model if which == "raw" else self.ema


def assert_finite(weights: dict[str, torch.Tensor], step: int) -> None:
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingError(
                f"step {step}: parameter {name} holds NaN/Inf; no checkpoint was written "
                "(lower optim.max_lr or set optim.grad_clip_norm)"
            )


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` (atomically) after checking its weights are finite."""
    assert_finite(checkpoint.model, checkpoint.step)
    c = checkpoint
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": int(c.step),
        "model": c.model,
        "config": c.config,
        "days": list(c.days),
        "evaluations": c.evaluations,
    }
    optional = {
        "features": c.features,
        "ema": c.ema,
        "ema_n_averaged": c.ema_n_averaged,
        "optimizer": c.optimizer,
        "scheduler": c.scheduler,
        "resume": c.resume,
    }
    payload |= {k: v for k, v in optional.items() if v is not None}
    atomic_write_bytes(Path(path), lambda f: torch.save(payload, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """The checkpoint at ``path`` (any readable format version), or a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, wrong file type, refused object ...
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path}: not a brain2text checkpoint")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise DataError(
            f"{path}: checkpoint format version {version} is not supported "
            f"(this brain2text reads {', '.join(map(str, READABLE_VERSIONS))})"
        )
    missing = [k for k in ("step", "model", "config", "days") if k not in payload]
    if missing:
        raise DataError(f"{path}: a checkpoint without {', '.join(missing)}")
    if version == 1:
        evaluations = {k: payload[k] for k in _V1_EVALUATIONS if k in payload}
    else:
        evaluations = payload.get("evaluations") or {}
    n_averaged = payload.get("ema_n_averaged")
    return Checkpoint(
        step=int(payload["step"]),
        model=payload["model"],
        config=payload["config"],
        days=list(payload["days"]),
        features=payload.get("features"),
        evaluations=evaluations,
        ema=payload.get("ema"),
        ema_n_averaged=None if n_averaged is None else int(n_averaged),
        optimizer=payload.get("optimizer"),
        scheduler=payload.get("scheduler"),
        resume=payload.get("resume"),
        format_version=int(version),
    )
