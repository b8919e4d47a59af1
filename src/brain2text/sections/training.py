"""The sections that shape training: ``augment`` (with its heavy time masks), ``optim`` (and
the schedules' boundaries as torch computes them) and ``train``."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from brain2text.sections.base import Section


class TimeMasksConfig(Section):
    count: int = Field(20, ge=0)
    """Masks per trial (they may overlap)."""
    max_fraction: float = Field(0.05, gt=0.0, le=1.0)
    """Each mask's width is uniform in 1 .. max(1, floor(max_fraction * the trial's bins))."""
    fill: Literal["zero", "learned"] = "zero"
    """Masked bins become 0 (the z-scored mean), or the model's learned mask token."""


class AugmentConfig(Section):
    white_noise_sd: float = Field(0.8, ge=0.0)
    constant_offset_sd: float = Field(0.2, ge=0.0)
    time_mask_prob: float = Field(0.0, ge=0.0, le=1.0)
    time_mask_width: int = Field(0, ge=0)
    time_mask_max_masks: int = Field(0, ge=0)
    freq_mask_prob: float = Field(0.0, ge=0.0, le=1.0)
    freq_mask_width: int = Field(0, ge=0)
    freq_mask_max_masks: int = Field(0, ge=0)
    random_cut: int = Field(0, ge=0)
    """Drop the first k bins of every trial of a training batch, k uniform in 0..random_cut and
    the same for the whole batch (the Brain-to-Text '25 baseline's 3); 0: off."""
    time_masks: TimeMasksConfig | None = None
    """Heavy time masking (the time-masked Transformer's recipe): many spans per trial, each a
    fraction of the trial's length (None: off)."""


class OptimConfig(Section):
    optimizer: Literal["adam", "adamw"] = "adam"
    max_lr: float = Field(0.02, gt=0.0)
    """Peak learning rate (the constant one for ``schedule: constant``)."""
    max_lr_from: str | None = None
    """An ``lr_find.json`` written by ``brain2text lr-find`` (relative to the working
    directory): resolving the run (:func:`load_run`) sets ``max_lr`` to its suggestion and keeps
    this key as the record of where the number came from."""
    l2_decay: float = Field(1e-5, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(0.1, gt=0.0)
    schedule: Literal["onecycle", "linear", "constant", "warmup_cosine", "plateau", "step"] = (
        "constant"
    )
    """``plateau``: torch's ReduceLROnPlateau on the evaluation PER, stepped at evaluations
    (``plateau_patience`` evaluations without improvement multiply the LR by
    ``plateau_factor``, down to ``end_lr``). ``step``: ``max_lr`` until ``step_at`` of the run,
    then ``max_lr * step_factor`` (the time-masked Transformer's schedule)."""
    step_at: float = Field(0.6, gt=0.0, lt=1.0)
    """``step`` schedule: the fraction of ``train.n_batch`` after which the LR drops."""
    step_factor: float = Field(0.1, gt=0.0, le=1.0)
    """``step`` schedule: what the LR is multiplied by at ``step_at``."""
    pct_start: float = Field(0.3, gt=0.0, lt=1.0)
    div_factor: float = Field(25.0, gt=0.0)
    final_div_factor: float = Field(1e4, gt=0.0)
    anneal_strategy: Literal["cos", "linear"] = "cos"
    cycle_momentum: bool = False
    """OneCycle only: cycle Adam's beta1 between 0.85 and 0.95 (torch's default is True, which
    overrides ``betas[0]`` during the run)."""
    end_lr: float = Field(0.0, ge=0.0)
    """Final LR of ``linear`` and ``warmup_cosine``."""
    warmup_batches: int = Field(0, ge=0)
    """Linear warm-up length of ``warmup_cosine``."""
    grad_clip_norm: float | None = Field(None, gt=0.0)
    plateau_factor: float = Field(0.5, gt=0.0, lt=1.0)
    plateau_patience: int = Field(8, ge=0)
    day_max_lr: float | None = Field(None, gt=0.0)
    """The per-day input layers' own parameter group: its peak LR (None: ``max_lr``). Setting
    any ``day_*`` key gives the day layers a group of their own, on the same schedule."""
    day_end_lr: float | None = Field(None, ge=0.0)
    """Final LR of the day layers' group (None: ``end_lr``; not with ``onecycle``)."""
    day_weight_decay: float | None = Field(None, ge=0.0)
    """Weight decay of the day layers' group (None: ``l2_decay``)."""
    day_drift_l2: float = Field(0.0, ge=0.0)
    """Adds ``day_drift_l2 * sum_d ||W_{d+1} - W_d||^2 + ||b_{d+1} - b_d||^2`` over adjacent
    days (in the dataset's day order) to the loss: neighbouring days' input layers are pulled
    toward each other (0: off; needs ``model.day_layers: per_day``)."""

    @property
    def has_day_group(self) -> bool:
        return any(v is not None for v in (self.day_max_lr, self.day_end_lr, self.day_weight_decay))

    @model_validator(mode="after")
    def _day_group_schedules(self) -> OptimConfig:
        if self.day_end_lr is not None and self.schedule == "onecycle":
            raise ValueError(
                "optim.day_end_lr: onecycle ends every group at its peak / "
                "(div_factor * final_div_factor); use warmup_cosine or linear"
            )
        if self.day_end_lr is not None and self.schedule == "step":
            raise ValueError(
                "optim.day_end_lr: step ends every group at its peak * step_factor; "
                "use warmup_cosine or linear"
            )
        return self


class TrainConfig(Section):
    batch_size: int = Field(64, ge=1)
    n_batch: int = Field(10000, ge=1)
    use_amp: bool = False
    amp_dtype: Literal["bf16", "fp16"] = "bf16"
    num_workers: int = Field(0, ge=0)
    seed: int = 0
    eval_every: int = Field(100, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    length_bucket_pool: int | None = Field(None, ge=1)
    """Length-bucketed batches: pools of this many batches are sorted by trial length before
    being cut into batches (less padding, batches still random). None: plain random batches,
    each padded to its longest trial."""
    days_per_batch: int | None = Field(None, ge=1)
    """Each training batch draws its trials from this many random days, in equal shares (the
    Brain-to-Text '25 baseline's 4); None: batches drawn from all training trials."""
    grad_accum: int = Field(1, ge=1)
    """Gradient accumulation: each batch of ``batch_size`` trials is run as this many
    micro-batches of ``batch_size / grad_accum`` (padded as the whole batch), their gradients
    summed before one optimizer step, so the recipe is that of the whole batch in less memory."""
    max_nonfinite_in_a_row: int = Field(20, ge=1)
    """Stop after this many consecutive steps with a non-finite loss or gradient."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``..."""
    threads: int | None = Field(None, ge=1)
    """torch intra-op threads (None: torch's default)."""
    flush_denormals: bool = True
    """Flush subnormal floats to zero on the CPU while training, evaluating and decoding
    (``torch.set_flush_denormal``): arithmetic on them is many times slower, and CPU training
    would slow down as its weights and optimizer moments drift into them. run.json records
    the setting and whether it took effect. False: IEEE subnormals, as torch's default."""
    checkpoint_every: int | None = Field(None, ge=1)
    """Batches between saves of ``checkpoints/last.pt``, the point ``brain2text train --resume``
    continues from (None: at every evaluation only). ``last.pt`` is also saved at every
    evaluation."""
    ema_decay: float | None = Field(None, ge=0.0, lt=1.0)
    """Keep an exponential moving average of the weights (``ema = decay * ema + (1 - decay) *
    weights`` after every optimizer step that was not skipped, buffers included); each
    evaluation then also scores the EMA weights (``<split>/per_ema``, ``<split>/loss_ema``) and
    checkpoints hold them beside the raw ones. None: off."""
    select_on_ema: bool = False
    """Choose ``best.pt`` on the EMA weights' PER instead of the raw weights' (needs
    ``ema_decay``)."""
    select_on: Literal["per", "wer"] = "per"
    """What ``best.pt`` is chosen on: the evaluation PER, or the WER of
    ``eval.word_decoding`` (then only evaluations that decode words can improve it)."""
    compile: bool = False
    """Compile the training forward pass with ``torch.compile`` (dynamic shapes: trial lengths
    vary). Worth it on GPU for long runs; the first batches are slow while it compiles."""

    @model_validator(mode="after")
    def _select_on_ema_needs_ema(self) -> TrainConfig:
        if self.select_on_ema and self.ema_decay is None:
            raise ValueError("train.select_on_ema needs train.ema_decay")
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"train.batch_size={self.batch_size} cannot be cut into "
                f"train.grad_accum={self.grad_accum} equal micro-batches"
            )
        if self.days_per_batch is not None and self.length_bucket_pool is not None:
            raise ValueError(
                "train.days_per_batch and train.length_bucket_pool choose batches "
                "two different ways: set one of them"
            )
        return self


def onecycle_warmup_end(pct_start: float, n_batch: int) -> float:
    """The batch at which torch's OneCycleLR ends its warm-up: ``pct_start * n_batch - 1``, a
    float, as torch computes it. Within the warm-up torch divides by it, so at 0 (a warm-up of
    exactly one batch) its first LR is 0 / 0: a ZeroDivisionError. Below 0 there is no warm-up
    at all (the LR starts on the way down from ``max_lr``) and torch runs it."""
    return float(pct_start * n_batch) - 1


def step_boundary(step_at: float, n_batch: int) -> int:
    """The first batch of the ``step`` schedule's lower LR: the first index at or past
    ``step_at * n_batch`` (0.6 x 400 is batch 240, not 241 for the float's 240.00000000000003)."""
    return math.ceil(step_at * n_batch - 1e-9)
