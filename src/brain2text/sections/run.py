"""The ``data`` section, the sections of what runs around training (adapt, tta, criteria,
watch, eval) and :class:`RunConfig`, which holds them all, with :func:`unrunnable`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from brain2text.sections.base import Section
from brain2text.sections.encoder import ModelConfig
from brain2text.sections.training import (
    AugmentConfig,
    OptimConfig,
    TrainConfig,
    onecycle_warmup_end,
    step_boundary,
)

RUNNABLE = "runnable"
"""Validation context key: with ``{RUNNABLE: True}`` a :class:`RunConfig` is also checked for
what training needs of it (:func:`unrunnable`). Resolving a run file to train it checks it;
configs stored by runs that already trained (checkpoints, ``config.yaml``) are read without."""


class DataConfig(Section):
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


class FasterThanConfig(Section):
    run: str
    """Another run folder: absolute, or relative to the working directory or to a folder above
    this run's (``runs/run11`` for a run in ``runs/run13``, whatever the working directory)."""
    per: float = Field(gt=0.0)
    """This run must reach an eval PER <= ``per`` in fewer batches than that run did."""


class AdaptConfig(Section):
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


class TtaConfig(Section):
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


class CriteriaConfig(Section):
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


class WatchConfig(Section):
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


class WordDecodingConfig(Section):
    """Word decoding of the evaluation split during training (needs the ``lm`` extra)."""

    lm: str
    """An LM folder written by ``brain2text lm build``."""
    every: int = Field(1, ge=1)
    """Decode words at every N-th evaluation (the beam search costs more than greedy PER)."""
    beam_size: int = Field(50, ge=1)
    lm_weight: float = Field(2.0, ge=0.0)
    word_score: float = 0.0


class EvalConfig(Section):
    word_decoding: WordDecodingConfig | None = None
    """Log ``<split>/wer`` during training (None: PER only)."""


class RunConfig(Section):
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
