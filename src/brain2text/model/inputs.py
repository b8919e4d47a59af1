"""The input layers both encoders share, and their read-out.

:class:`InputLayers` is a base class (not a sub-module) so that its weights keep the names
checkpoints, exports and optimiser groups know them by (``day_weights``, ``day_biases``,
``smoother.kernel``, ``layer_norm.*``, ``mask_token``, ``readout.*``). On (B, T, C) features:

1. ``log_input``: ``sign(x) * log(1 + |x|)``.
2. Gaussian smoothing along time (:class:`GaussianSmoother`; 0 width: none).
3. The day layer ``softsign(x @ W[day] + b[day])`` (``day_layers: per_day``; ``shared``: one
   W, b for every day; ``none``: skipped).
4. LayerNorm over the features (``use_layer_norm``).
5. The learned mask token in the bins a training batch's ``time_mask`` marks (heavy time
   masking with ``fill: learned``).
6. Input dropout.

The read-out maps the encoder's output to the 41 CTC classes, or to the 1641 diphone classes
(``targets: diphone``), whose phoneme log-probabilities the forward pass returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from brain2text.model.ctc import ctc_input_lengths, output_lengths
from brain2text.model.diphones import N_DIPHONE_CLASSES, phoneme_log_probs
from brain2text.phonemes import N_CLASSES
from brain2text.sections import ModelConfig

Outputs = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""A forward pass's result: (B, T', 41) phoneme logits (log-probabilities for diphone
targets), or with ``diphones=True`` those and the (B, T', 1641) diphone logits."""


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """Normalised Gaussian taps centred on (size - 1) / 2, as scipy's gaussian window."""
    n = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    taps = torch.exp(-0.5 * (n / sigma) ** 2)
    return (taps / taps.sum()).to(torch.float32)


class GaussianSmoother(nn.Module):
    """Depthwise Gaussian smoothing along time with "same" padding (or, ``causal``, all of it
    on the left: output t reads inputs t - size + 1 .. t); (B, T, C) -> (B, T, C)."""

    if TYPE_CHECKING:  # a buffer; declared for the type checker only (TorchScript rejects it)
        kernel: torch.Tensor  # (C, 1, size)

    def __init__(self, n_channels: int, sigma: float, size: int, causal: bool = False) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.causal = causal
        self.register_buffer("kernel", gaussian_kernel(size, sigma).repeat(n_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.kernel.shape[-1]
        # torch's "same": 9 left, 10 right for 20 taps; causal: 19 left
        left = size - 1 if self.causal else (size - 1) // 2
        x = F.pad(x.transpose(1, 2), (left, size - 1 - left))  # (B, C, T + size - 1)
        x = F.conv1d(x, self.kernel.to(x.dtype), groups=self.n_channels)
        return x.transpose(1, 2)


def log_input(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(1 + |x|)``: a log transform defined for negative (z-scored) values."""
    return torch.sign(x) * torch.log1p(x.abs())


def n_outputs(config: ModelConfig) -> int:
    """The read-out's classes: 41, or 1641 for diphone targets."""
    return N_DIPHONE_CLASSES if config.targets == "diphone" else N_CLASSES


class InputLayers(nn.Module):
    """Base of the encoders: builds and applies the shared input layers and the read-out."""

    day_weights: nn.Parameter | None
    day_biases: nn.Parameter | None
    mask_token: nn.Parameter | None
    readout: nn.Linear  # built by the encoder, which knows its output width

    def __init__(
        self, config: ModelConfig, n_days: int, n_features: int, mask_token: bool = False
    ) -> None:
        super().__init__()
        self.config = config
        self.n_days = n_days
        self.n_features = n_features
        self.smoother = (
            GaussianSmoother(
                n_features,
                config.gaussian_smooth_width,
                config.smooth_kernel_size,
                config.causal_smoothing,
            )
            if config.gaussian_smooth_width > 0
            else nn.Identity()
        )
        n_layers = {"per_day": n_days, "shared": 1, "none": 0}[config.day_layers]
        if n_layers:
            self.day_weights = nn.Parameter(torch.eye(n_features).repeat(n_layers, 1, 1))
            self.day_biases = nn.Parameter(torch.zeros(n_layers, 1, n_features))
        else:
            self.day_weights = self.day_biases = None
        self.layer_norm = nn.LayerNorm(n_features) if config.use_layer_norm else nn.Identity()
        # only runs that mask with it have one, so older checkpoints load as they were
        self.mask_token = nn.Parameter(torch.zeros(n_features)) if mask_token else None
        self.input_dropout = nn.Dropout(config.input_dropout)

    def output_lengths(self, n_bins: torch.Tensor) -> torch.Tensor:
        """Output frames of inputs of ``n_bins`` bins: what greedy decoding reads."""
        return output_lengths(n_bins, self.config.kernel_len, self.config.stride_len)

    def ctc_input_lengths(self, n_bins: torch.Tensor) -> torch.Tensor:
        """The input lengths the CTC loss is given (``model.ctc_input_lengths``)."""
        c = self.config
        return ctc_input_lengths(n_bins, c.kernel_len, c.stride_len, c.ctc_input_lengths)

    def day_layer(self, x: torch.Tensor, day_idx: torch.Tensor) -> torch.Tensor:
        """``softsign(x @ W[day] + b[day])`` (B, T, C), or ``x`` without day layers."""
        if self.day_weights is None or self.day_biases is None:
            return x
        if self.day_weights.shape[0] == 1:  # shared: one layer for every day
            day_idx = torch.zeros_like(day_idx)
        # index_select, not day_weights[day_idx]: the backward of advanced indexing is
        # index_put_(accumulate=True), which on a CPU with several threads adds the trials of one
        # day with atomic adds in an order that changes from run to run (once the gathered
        # tensor has 32768 elements); index_select's backward (index_add_) adds them in order,
        # so training is bit-reproducible at any thread count
        weights = torch.index_select(self.day_weights, 0, day_idx)  # (B, C, C)
        biases = torch.index_select(self.day_biases, 0, day_idx)  # (B, 1, C)
        return F.softsign(torch.bmm(x, weights) + biases)

    def inputs(
        self, x: torch.Tensor, day_idx: torch.Tensor, time_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Steps 1-6 of the module docstring: (B, T, C) -> (B, T, C)."""
        if self.config.log_input:
            x = log_input(x)
        x = self.day_layer(self.smoother(x), day_idx)
        x = self.layer_norm(x)
        if time_mask is not None and self.mask_token is not None:
            x = torch.where(time_mask[:, :, None], self.mask_token.to(x.dtype), x)
        return self.input_dropout(x)

    def read_out(self, hidden: torch.Tensor, diphones: bool = False) -> Outputs:
        """The read-out's logits; for diphone targets the phoneme log-probabilities (and,
        with ``diphones``, the diphone logits too)."""
        logits = self.readout(hidden)
        if self.config.targets != "diphone":
            return logits
        phonemes = phoneme_log_probs(logits)
        return (phonemes, logits) if diphones else phonemes
