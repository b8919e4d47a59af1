"""The typed sections of a run config, one per concern (data, model, augment, optim, train,
adapt, tta, criteria, watch, eval) and :class:`RunConfig`, which holds them. Loading run files,
overrides and differences are in :mod:`brain2text.config`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

RUNNABLE = "runnable"
"""Validation context key: with ``{RUNNABLE: True}`` a :class:`RunConfig` is also checked for
what training needs of it (:func:`unrunnable`). Resolving a run file to train it checks it;
configs stored by runs that already trained (checkpoints, ``config.yaml``) are read without."""

BIN_SECONDS = 0.02
"""The width of a feature bin in both releases (``brain2text.data.manifest.BIN_SECONDS``, which
the core cannot import): it turns ``model.left_context_s`` into bins."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    path: str = "data/prepared"
    """Prepared dataset folder (output of ``brain2text prepare``)."""
    val_blocks_per_day: int = Field(1, ge=0)
    """Last N training blocks of each day held out as the validation split (days with a single
    training block keep it for training)."""
    val_fraction_when_no_blocks: float = Field(0.1, ge=0.0, lt=1.0)
    """A day whose block numbers are unknown (a reference pickle import) gives the last this
    fraction of its training trials, in file order, to the validation split instead."""
    eval_split: Literal["val", "test"] = "val"
    """Split decoded during training for checkpoint choice. ``test`` reproduces the reference's
    practice of selecting on the test split: its test PER is then optimistically biased."""
    on_invalid_trial: Literal["error", "skip"] = "error"
    """A trial shorter than ``kernel_len`` or with more phonemes than the model's output length:
    stop with an error naming it, or skip it (counted and reported)."""


class ModelConfig(_Section):
    n_units: int = Field(1024, ge=1)
    n_layers: int = Field(5, ge=1)
    dropout: float = Field(0.4, ge=0.0, lt=1.0)
    use_layer_norm: bool = False
    input_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bidirectional: bool = False
    stride_len: int = Field(4, ge=1)
    kernel_len: int = Field(32, ge=1)
    gaussian_smooth_width: float = Field(2.0, ge=0.0)
    """Sigma of the Gaussian smoother in bins (0 disables smoothing)."""
    smooth_kernel_size: int = Field(20, ge=1)
    causal_smoothing: bool = False
    """Pad the Gaussian smoother on the left only, so that a bin's output depends on that bin
    and the ones before it (the centred kernel then lags by (smooth_kernel_size - 1) / 2 bins):
    with a unidirectional GRU, the whole model is causal and can decode as bins arrive."""
    learnable_h0: bool = False
    """A learned initial GRU state (one vector per layer and direction, Xavier-initialised, as
    the Brain-to-Text '25 baseline) instead of zeros."""
    ctc_input_lengths: Literal["exact", "reference"] = "exact"
    """Input lengths given to the CTC loss: ``exact``, the true output length
    ``(T - K) // S + 1``; ``reference``, the reference decoder's ``(T - K) / S`` truncated (one
    frame fewer), to reproduce its baseline exactly."""
    kind: Literal["gru", "transformer"] = "gru"
    """The encoder: the baseline's GRU, or a Transformer over patches of ``kernel_len`` bins
    every ``stride_len`` bins (:mod:`brain2text.model.transformer`). Both share the input
    layers (smoothing, day layer, LayerNorm, input dropout, the learned mask token)."""
    day_layers: Literal["per_day", "shared", "none"] = "per_day"
    """The affine input layer + softsign: one per recording day (the baseline), one for all
    days, or none (the features go to the encoder as they are)."""
    log_input: bool = False
    """Feed the encoder ``sign(x) * log(1 + |x|)`` of its input features (a log transform that
    is defined for z-scored features too), applied first, before smoothing."""
    d_model: int = Field(384, ge=1)
    """Transformer: the width of the patch embedding and of every layer."""
    n_heads: int = Field(6, ge=1)
    """Transformer: attention heads (``d_model`` must divide by it)."""
    ff_mult: int = Field(4, ge=1)
    """Transformer: the feed-forward layer's width as a multiple of ``d_model``."""
    position: Literal["relative", "sinusoidal"] = "relative"
    """Transformer: T5-style relative position bias (per head, shared by the layers), or fixed
    sinusoidal positions added to the patch embedding (the paper's ablation)."""
    relative_buckets: int = Field(32, ge=2)
    relative_max_distance: int = Field(128, ge=1)
    """Transformer: the T5 bias's buckets and the distance (in patches) beyond which they are
    all one bucket."""
    left_context_s: float | None = Field(None, gt=0.0)
    """Causal Transformer: the seconds of past a patch may attend to (None: all of it)."""
    left_context_train_s: tuple[float, float] | None = None
    """Causal Transformer: in training, each batch draws its left context uniformly in this
    range of seconds (None: ``left_context_s`` throughout)."""
    targets: Literal["phoneme", "diphone"] = "phoneme"
    """What the read-out emits: the 41 CTC classes, or blank + every (previous, current) pair
    of the 40 symbols, whose phoneme log-probabilities are their sums over the previous symbol
    (:mod:`brain2text.model.diphones`); every decoder and metric reads those phoneme
    log-probabilities."""
    diphone_alpha: tuple[float, float] = (0.1, 0.6)
    """Diphone targets: the weight of the phoneme CTC loss in
    ``alpha * L_phoneme + (1 - alpha) * L_diphone``, linear from the first value at the first
    batch to the second at the last (each in [0, 1]). DCoND (arXiv 2411.10657) anneals alpha
    upwards; its schedule's published values are not restated here, so the default
    (0.1, 0.6) is this package's choice, not the paper's."""

    @model_validator(mode="after")
    def _diphone_alpha_is_a_weight(self) -> ModelConfig:
        if not all(0.0 <= a <= 1.0 for a in self.diphone_alpha):
            raise ValueError(
                f"model.diphone_alpha={list(self.diphone_alpha)}: both ends of the schedule "
                "weigh the phoneme loss and must lie in [0, 1]"
            )
        return self

    @model_validator(mode="after")
    def _transformer_shape(self) -> ModelConfig:
        if self.kind == "transformer" and self.d_model % self.n_heads:
            raise ValueError(
                f"model.d_model={self.d_model} does not divide into model.n_heads="
                f"{self.n_heads} heads; make d_model a multiple of n_heads"
            )
        return self

    @model_validator(mode="after")
    def _left_context(self) -> ModelConfig:
        keys = [
            f"model.{k}"
            for k in ("left_context_s", "left_context_train_s")
            if getattr(self, k) is not None
        ]
        if not keys:
            return self
        if self.kind == "gru":
            raise ValueError(
                f"{' and '.join(keys)}: a left context bounds a Transformer's attention; "
                "model.kind=gru has none (remove it or set model.kind=transformer)"
            )
        if self.bidirectional:
            raise ValueError(
                f"{' and '.join(keys)}: a left context is for causal attention; "
                "model.bidirectional=true attends to the whole trial (remove it or set "
                "bidirectional: false)"
            )
        patch_s = self.kernel_len * BIN_SECONDS
        if self.left_context_train_s is not None:
            lo, hi = self.left_context_train_s
            if lo > hi:
                raise ValueError(
                    f"model.left_context_train_s=[{lo:g}, {hi:g}]: the low end is above the "
                    "high end"
                )
            if lo < patch_s - 1e-9:
                raise ValueError(
                    f"model.left_context_train_s starts at {lo:g} s, shorter than one patch "
                    f"(model.kernel_len={self.kernel_len} bins = {patch_s:g} s)"
                )
        if self.left_context_s is not None and self.left_context_s < patch_s - 1e-9:
            raise ValueError(
                f"model.left_context_s={self.left_context_s:g} s is shorter than one patch "
                f"(model.kernel_len={self.kernel_len} bins = {patch_s:g} s)"
            )
        return self


class TimeMasksConfig(_Section):
    count: int = Field(20, ge=0)
    """Masks per trial (they may overlap)."""
    max_fraction: float = Field(0.05, gt=0.0, le=1.0)
    """Each mask's width is uniform in 1 .. max(1, floor(max_fraction * the trial's bins))."""
    fill: Literal["zero", "learned"] = "zero"
    """Masked bins become 0 (the z-scored mean), or the model's learned mask token."""


class AugmentConfig(_Section):
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


class OptimConfig(_Section):
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


class TrainConfig(_Section):
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


class FasterThanConfig(_Section):
    run: str
    """Another run folder: absolute, or relative to the working directory or to a folder above
    this run's (``runs/run11`` for a run in ``runs/run13``, whatever the working directory)."""
    per: float = Field(gt=0.0)
    """This run must reach an eval PER <= ``per`` in fewer batches than that run did."""


class AdaptConfig(_Section):
    """``brain2text adapt``: fitting a new day's input layer alone on a few labelled sentences."""

    steps: int = Field(200, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(8, ge=1)
    held_out_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    """The last trials of the new day (this share, in file order) are not fitted: the PER
    before and after adaptation is measured on them."""
    pseudo_gate: float = Field(-2.5, allow_inf_nan=False)
    """``adapt --unlabelled``: a trial's LM decoding becomes its label only when the best
    sentence's n-gram score per word (natural log, ``</s>`` included) is at least this (the
    confident-trial threshold of a Brain-to-Text '25 top-10 entry's self-training, -2.5)."""


class TtaConfig(_Section):
    """Test-time adaptation (``evaluate --tta``, ``Decoder.load(tta=...)``), DietCORP's step:
    each trial's ``copies`` time-masked, noised copies are fitted for ``steps`` AdamW steps to
    the CTC path of the un-masked trial, on the chosen parameters only; the trial is decoded
    with those weights, which are then restored. Defaults: the DietCORP settings of the public
    code of Feghhi et al. (2025) (64 copies, 1 step, lr 5e-4, weight decay 1e-5, clipping 0.5,
    20 masks of up to 7.5%, white noise 0.2, offset 0.05)."""

    copies: int = Field(64, ge=1)
    steps: int = Field(1, ge=1)
    lr: float = Field(5e-4, ge=0.0, allow_inf_nan=False)
    """AdamW's learning rate (0: the weights never move, the decoding is the plain one)."""
    weight_decay: float = Field(1e-5, ge=0.0, allow_inf_nan=False)
    grad_clip_norm: float | None = Field(0.5, gt=0.0)
    parameters: Literal["auto", "patch_embedding", "day_layer", "gru_input"] = "auto"
    """What a trial's step updates: ``patch_embedding`` (a Transformer's LayerNorm -> Linear ->
    LayerNorm patch embedding), ``day_layer`` (the day input layers), ``gru_input`` (a GRU's
    first layer's input weights and biases); ``auto``: the published choices, the patch
    embedding of a Transformer, the day layer of a GRU (its first layer's input weights when
    it has none)."""
    mask_count: int = Field(20, ge=0)
    """Time masks per copy (:func:`brain2text.model.masking.time_mask_spans`)."""
    mask_max_fraction: float = Field(0.075, gt=0.0, le=1.0)
    """Each mask's width is uniform in 1 .. max(1, floor(this x the trial's bins))."""
    white_noise_sd: float = Field(0.2, ge=0.0)
    constant_offset_sd: float = Field(0.05, ge=0.0)
    seed: int = 0
    """Each trial's masks, noise and dropout come from a generator seeded with (seed, trial)."""


class CriteriaConfig(_Section):
    """A run note's success criteria, judged from metrics.jsonl (``brain2text report``).
    Every criterion is optional: None (or false for ``no_nonfinite``) leaves it unjudged."""

    target_per: float | None = Field(None, gt=0.0)
    """The best eval PER must be < this."""
    target_wer: float | None = Field(None, gt=0.0)
    """The best eval WER must be < this (needs ``eval.word_decoding``)."""
    final_per: float | None = Field(None, gt=0.0)
    """The PER of the last evaluation must be <= this."""
    max_grad_norm: float | None = Field(None, gt=0.0)
    """Every finite pre-clip gradient norm must stay < this."""
    no_nonfinite: bool | None = None
    """True: no step may be skipped for a non-finite loss or gradient."""
    faster_than: FasterThanConfig | None = None


class WatchConfig(_Section):
    """The instability watch (brain2text.training.watch): warnings logged as training goes."""

    enabled: bool = True
    trend_evals: int = Field(3, ge=2)
    """Evaluations in the trend window: eval loss and PER rose at each, the LR rose and the
    mean pre-clip grad norm between evaluations rose over it."""
    min_rel_rise: float = Field(0.01, ge=0.0)
    """Relative rise that counts as a rise (0.01: more than 1% above the value before)."""
    grad_norm_ceiling: float | None = Field(None, gt=0.0)
    """Warn (once per evaluation interval) at a pre-clip grad norm >= this; None: use
    ``criteria.max_grad_norm`` when it is set, else no ceiling."""
    stop_after: int | None = Field(None, ge=1)
    """Stop the run after this many evaluations in a row with a trend warning (None: warn
    only). The best checkpoint stays, since checkpoints are only written on improvement."""


class WordDecodingConfig(_Section):
    """Word decoding of the evaluation split during training (needs the ``lm`` extra)."""

    lm: str
    """An LM folder written by ``brain2text lm build``."""
    every: int = Field(1, ge=1)
    """Decode words at every N-th evaluation (the beam search costs more than greedy PER)."""
    beam_size: int = Field(50, ge=1)
    lm_weight: float = Field(2.0, ge=0.0)
    word_score: float = 0.0


class EvalConfig(_Section):
    word_decoding: WordDecodingConfig | None = None
    """Log ``<split>/wer`` during training (None: PER only)."""


class RunConfig(_Section):
    name: str
    parent: str | None = None
    description: str = ""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    criteria: CriteriaConfig = CriteriaConfig()
    watch: WatchConfig = WatchConfig()
    eval: EvalConfig = EvalConfig()
    adapt: AdaptConfig = AdaptConfig()
    tta: TtaConfig = TtaConfig()

    @model_validator(mode="after")
    def _select_on_wer_needs_words(self) -> RunConfig:
        if self.train.select_on == "wer" and self.eval.word_decoding is None:
            raise ValueError("train.select_on=wer needs eval.word_decoding (an LM folder)")
        if self.train.select_on == "wer" and self.train.select_on_ema:
            raise ValueError(
                "train.select_on=wer chooses on the raw weights' WER: leave train.select_on_ema off"
            )
        return self

    @model_validator(mode="after")
    def _day_drift_needs_per_day_layers(self) -> RunConfig:
        if self.optim.day_drift_l2 > 0 and self.model.day_layers != "per_day":
            raise ValueError(
                f"optim.day_drift_l2={self.optim.day_drift_l2:g} pulls adjacent days' input "
                f"layers together, but model.day_layers={self.model.day_layers} has no layer "
                "per day: set model.day_layers=per_day or optim.day_drift_l2=0"
            )
        return self

    @model_validator(mode="after")
    def _can_be_run(self, info: ValidationInfo) -> RunConfig:
        if info.context and info.context.get(RUNNABLE):
            problems = unrunnable(self)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


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


def unrunnable(config: RunConfig) -> list[str]:
    """What stops this config from training, one line each naming the keys (empty: it runs).

    The LR schedule must fit the run (torch's OneCycleLR cannot schedule a one-batch warm-up; a
    warm-up as long as the run leaves nothing of the cosine), an evaluation must fall on the
    ``eval_every`` grid, and a batch must hold a trial of every day it draws from. (That
    ``grad_accum`` divides ``batch_size`` is checked by :class:`TrainConfig` itself.)"""
    o, t = config.optim, config.train
    problems = []
    if o.schedule == "onecycle" and onecycle_warmup_end(o.pct_start, t.n_batch) == 0:
        problems.append(
            f"optim.pct_start={o.pct_start:g} x train.n_batch={t.n_batch} = 1: a one-batch "
            "warm-up, which torch's OneCycleLR cannot schedule (it divides by pct_start x "
            "n_batch - 1 = 0); change either key"
        )
    if o.schedule == "warmup_cosine" and o.warmup_batches >= t.n_batch:
        problems.append(
            f"optim.warmup_batches={o.warmup_batches} >= train.n_batch={t.n_batch}: the "
            "warm-up takes the whole run, no batch is left for the cosine decay"
        )
    if o.schedule == "step" and step_boundary(o.step_at, t.n_batch) >= t.n_batch:
        problems.append(
            f"optim.step_at={o.step_at:g} x train.n_batch={t.n_batch}: the step schedule would "
            "lower the LR after the last batch, so it never does; lower optim.step_at"
        )
    if t.eval_every > t.n_batch:
        problems.append(
            f"train.eval_every={t.eval_every} > train.n_batch={t.n_batch}: no evaluation "
            "before the last batch (no checkpoint choice, no instability watch); lower "
            "train.eval_every"
        )
    if t.days_per_batch is not None and t.days_per_batch > t.batch_size:
        problems.append(
            f"train.days_per_batch={t.days_per_batch} > train.batch_size={t.batch_size}: a "
            "batch cannot hold a trial of each of its days"
        )
    return problems
