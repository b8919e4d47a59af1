"""Learning-rate schedules, all stepped once per batch after the optimizer.

``onecycle`` is torch's OneCycleLR with the run file's numbers; ``linear`` goes from ``max_lr``
to ``end_lr`` over the run; ``constant`` keeps ``max_lr``; ``warmup_cosine`` rises linearly from
0 to ``max_lr`` over ``warmup_batches`` and then follows a cosine to ``end_lr``.

:func:`lr_trajectory` replays a schedule on a dummy parameter so that ``brain2text config`` can
show the LR a run will really use at its first batch, its peak and its last batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from brain2text.config import OptimConfig


def warmup_cosine_factor(step: int, warmup: int, total: int, end_ratio: float) -> float:
    """Multiplier of max_lr at ``step`` for linear warm-up then cosine decay to ``end_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup - 1, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return end_ratio + (1.0 - end_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear_factor(step: int, total: int, end_ratio: float) -> float:
    """Multiplier of max_lr going linearly from 1 at step 0 to ``end_ratio`` at the last step."""
    progress = min(step / max(total - 1, 1), 1.0)
    return 1.0 + (end_ratio - 1.0) * progress


def build_scheduler(optimizer: Optimizer, config: OptimConfig, n_batch: int) -> LRScheduler:
    end_ratio = config.end_lr / config.max_lr
    if config.schedule == "onecycle":
        return OneCycleLR(
            optimizer,
            max_lr=config.max_lr,
            total_steps=n_batch,
            pct_start=config.pct_start,
            anneal_strategy=config.anneal_strategy,
            div_factor=config.div_factor,
            final_div_factor=config.final_div_factor,
            cycle_momentum=config.cycle_momentum,
        )
    if config.schedule == "linear":
        return LambdaLR(optimizer, lambda step: linear_factor(step, n_batch, end_ratio))
    if config.schedule == "warmup_cosine":
        return LambdaLR(
            optimizer,
            lambda step: warmup_cosine_factor(step, config.warmup_batches, n_batch, end_ratio),
        )
    return LambdaLR(optimizer, lambda step: 1.0)


def build_optimizer(params, config: OptimConfig) -> Optimizer:
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(
        params, lr=config.max_lr, betas=tuple(config.betas), eps=config.eps,
        weight_decay=config.l2_decay,
    )


def lr_trajectory(config: OptimConfig, n_batch: int) -> list[float]:
    """The LR used at each batch 0..n_batch-1 (replayed on a dummy parameter, no model)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([param], config)
    scheduler = build_scheduler(optimizer, config, n_batch)
    lrs = []
    for _ in range(n_batch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@dataclass(frozen=True)
class ScheduleSummary:
    first: float
    peak: float
    peak_batch: int
    last: float
    n_batch: int

    def lines(self) -> list[str]:
        return [
            f"lr at batch 0: {self.first:.6g}",
            f"peak lr: {self.peak:.6g} at batch {self.peak_batch}",
            f"lr at the last batch ({self.n_batch - 1}): {self.last:.6g}",
        ]


def summarize(config: OptimConfig, n_batch: int) -> ScheduleSummary:
    lrs = lr_trajectory(config, n_batch)
    peak_batch = max(range(n_batch), key=lambda i: lrs[i])
    return ScheduleSummary(lrs[0], lrs[peak_batch], peak_batch, lrs[-1], n_batch)
