"""The ``model`` section: the encoder (GRU or Transformer), its input layers and targets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from brain2text.sections.base import Section

BIN_SECONDS = 0.02
"""The width of a feature bin in both releases (``brain2text.data.manifest.BIN_SECONDS``, which
the core cannot import): it turns ``model.left_context_s`` into bins."""


class ModelConfig(Section):
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
