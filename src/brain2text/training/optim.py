"""Learning-rate schedules, all stepped once per batch after the optimizer.

``onecycle`` is torch's OneCycleLR with the run file's numbers; ``linear`` goes from ``max_lr``
to ``end_lr`` over the run; ``constant`` keeps ``max_lr``; ``warmup_cosine`` rises linearly from
0 to ``max_lr`` over ``warmup_batches`` and then follows a cosine to ``end_lr``; ``step`` keeps
``max_lr`` for the batches before ``step_at`` x ``n_batch`` and ``max_lr * step_factor`` from
there on. ``plateau`` is torch's ReduceLROnPlateau on the evaluation PER: it is stepped at
evaluations only (:func:`steps_per_batch` is False for it).

With any ``optim.day_*`` key the per-day input layers are a parameter group of their own (their
peak and final LR and weight decay), on the same schedule as the rest.

:func:`lr_trajectory` replays a schedule on a dummy parameter so that ``brain2text config`` can
show the LR a run will really use at its first batch, its peak and its last batch.

:func:`day_drift_penalty` is ``optim.day_drift_l2``'s term of the training loss: how far apart
adjacent days' input layers are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    LambdaLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
)

from brain2text.config import OptimConfig
from brain2text.sections import step_boundary


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


def step_factor(step: int, boundary: int, factor: float) -> float:
    """Multiplier of max_lr at ``step``: 1 before ``boundary``, ``factor`` from it on."""
    return 1.0 if step < boundary else factor


def group_lrs(config: OptimConfig) -> list[tuple[float, float]]:
    """(peak, final) LR of each parameter group: the model, then the day layers if apart."""
    groups = [(config.max_lr, config.end_lr)]
    if config.has_day_group:
        peak = config.day_max_lr if config.day_max_lr is not None else config.max_lr
        groups.append((peak, config.day_end_lr if config.day_end_lr is not None else config.end_lr))
    return groups


def steps_per_batch(config: OptimConfig) -> bool:
    """Whether the schedule is stepped after every batch (all but ``plateau``)."""
    return config.schedule != "plateau"


def build_scheduler(
    optimizer: Optimizer, config: OptimConfig, n_batch: int
) -> LRScheduler | ReduceLROnPlateau:
    lrs = group_lrs(config)
    if config.schedule == "onecycle":
        return OneCycleLR(
            optimizer,
            max_lr=[peak for peak, _ in lrs],
            total_steps=n_batch,
            pct_start=config.pct_start,
            anneal_strategy=config.anneal_strategy,
            div_factor=config.div_factor,
            final_div_factor=config.final_div_factor,
            cycle_momentum=config.cycle_momentum,
        )
    if config.schedule == "plateau":
        return ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=config.plateau_factor,
            patience=config.plateau_patience,
            min_lr=[end for _, end in lrs],
        )
    if config.schedule == "linear":
        return LambdaLR(
            optimizer,
            [partial(linear_factor, total=n_batch, end_ratio=end / peak) for peak, end in lrs],
        )
    if config.schedule == "warmup_cosine":
        return LambdaLR(
            optimizer,
            [
                partial(
                    warmup_cosine_factor,
                    warmup=config.warmup_batches,
                    total=n_batch,
                    end_ratio=end / peak,
                )
                for peak, end in lrs
            ],
        )
    if config.schedule == "step":
        boundary = step_boundary(config.step_at, n_batch)
        return LambdaLR(
            optimizer,
            [partial(step_factor, boundary=boundary, factor=config.step_factor) for _ in lrs],
        )
    return LambdaLR(optimizer, [lambda step: 1.0 for _ in lrs])


DAY_PARAMETERS = ("day_weights", "day_biases")


def day_drift_penalty(weights: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """``sum_d ||W[d+1] - W[d]||^2 + ||b[d+1] - b[d]||^2`` over adjacent days of the (D, C, C)
    day weights and (D, 1, C) biases (0 for a single day), a scalar with their gradient."""
    return (weights[1:] - weights[:-1]).square().sum() + (biases[1:] - biases[:-1]).square().sum()


def param_groups(model: nn.Module, config: OptimConfig) -> list[dict]:
    """The optimizer's groups: every parameter in one, or the day layers apart
    (``optim.day_*``)."""
    if not config.has_day_group:
        return [{"params": list(model.parameters())}]
    named = list(model.named_parameters())
    day = [p for n, p in named if n in DAY_PARAMETERS]
    rest = [p for n, p in named if n not in DAY_PARAMETERS]
    (_, _), (day_peak, _) = group_lrs(config)
    decay = config.day_weight_decay if config.day_weight_decay is not None else config.l2_decay
    return [{"params": rest}, {"params": day, "lr": day_peak, "weight_decay": decay}]


def build_optimizer(model: nn.Module, config: OptimConfig) -> Optimizer:
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(
        param_groups(model, config),
        lr=config.max_lr,
        betas=(config.betas[0], config.betas[1]),
        eps=config.eps,
        weight_decay=config.l2_decay,
    )


def lr_trajectory(config: OptimConfig, n_batch: int) -> list[float]:
    """The LR of the model's group at each batch 0..n_batch-1 (replayed on a dummy parameter,
    no model); ``plateau`` is shown as if the PER never stopped improving."""
    dummy = nn.Module()
    dummy.weight = nn.Parameter(torch.zeros(1))
    dummy.day_weights = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer(dummy, config)
    scheduler = build_scheduler(optimizer, config, n_batch)
    lrs = []
    for _ in range(n_batch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if steps_per_batch(config):
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
