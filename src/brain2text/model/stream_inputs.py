"""The pieces every streaming step shares: the input layers bin by bin, and the read-out.

:class:`BinInputs` is :meth:`~brain2text.model.inputs.InputLayers.inputs` of one day for bins
as they arrive (eval mode: no input dropout; the learned mask token only fills training
masks, so it is never applied): ``log_input``, the causal smoother over ``[buffer, chunk]`` (an
unpadded convolution whose n outputs are the offline causal smoother's values at the chunk's
bins; the buffer holds the last Z-1 bins after ``log_input``, zeros before the trial, which is
the smoother's left zero padding since ``log_input(0) = 0``), the day's affine layer and
softsign (``day_layers: per_day`` copies that day's layer, ``shared`` the one layer, ``none``
skips it) and LayerNorm. :class:`ReadOut` is the model's read-out: the 41 logits, or for
diphone targets the phoneme log-probabilities
(:func:`~brain2text.model.diphones.phoneme_log_probs`).
Both script and trace to ONNX.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from brain2text.errors import ConfigError
from brain2text.model.diphones import phoneme_log_probs
from brain2text.model.inputs import GaussianSmoother, InputLayers, log_input


def check_day(model: InputLayers, day_index: int) -> None:
    """A one-line ConfigError unless ``day_index`` is one of ``model``'s days."""
    if not 0 <= day_index < model.n_days:
        raise ConfigError(f"day index {day_index}: the model has days 0..{model.n_days - 1}")


def check_streamable(model: InputLayers) -> None:
    """Raise a one-line :class:`ConfigError` when ``model`` cannot decode as bins arrive: a
    bidirectional encoder, or a centred smoother."""
    if model.config.bidirectional:
        reads = (
            "a bidirectional GRU reads the whole trial before its first output"
            if model.config.kind == "gru"
            else "a bidirectional Transformer attends to the whole trial before its first output"
        )
        raise ConfigError(
            f"model.bidirectional: {reads}; train a unidirectional model "
            "(model.bidirectional=false, model.causal_smoothing=true) to stream"
        )
    smoother = model.smoother
    if isinstance(smoother, GaussianSmoother) and not smoother.causal:
        size = smoother.kernel.shape[-1]
        ahead = size - 1 - (size - 1) // 2
        raise ConfigError(
            f"model.causal_smoothing is false: the centred smoother reads {ahead} "
            f"bins ahead of each output bin; train a causal child with "
            f"model.causal_smoothing=true (or model.gaussian_smooth_width=0)"
        )


class BinInputs(nn.Module):
    """``(chunk (B, n, C), smoother_buf (B, Z-1, C)) -> (bins (B, n, C), raw (B, Z-1+n, C))``:
    the chunk through the input layers of day ``day_index`` and ``[smoother_buf, chunk]``
    (after ``log_input``), whose last Z-1 bins are the next buffer."""

    def __init__(self, model: InputLayers, day_index: int) -> None:
        super().__init__()
        check_day(model, day_index)
        c = model.n_features
        self.n_features = c
        self.log_input = model.config.log_input
        like = model.readout.weight.detach()
        kernel = (
            model.smoother.kernel
            if isinstance(model.smoother, GaussianSmoother)
            else torch.ones(c, 1, 1, dtype=like.dtype, device=like.device)
        )
        self.kernel = nn.Buffer(kernel)  # (C, 1, Z), the model's own buffer when smoothing
        self.has_day_layer = model.day_weights is not None and model.day_biases is not None
        if model.day_weights is not None and model.day_biases is not None:
            shared = model.day_weights.shape[0] == 1
            day = torch.tensor([0 if shared else day_index], device=like.device)
            weight = torch.index_select(model.day_weights.detach(), 0, day).clone()
            bias = torch.index_select(model.day_biases.detach(), 0, day).clone()
        else:  # never read: the step skips the day layer
            weight = like.new_zeros(1, 0, 0)
            bias = like.new_zeros(1, 1, 0)
        self.weight = nn.Buffer(weight)  # (1, C, C)
        self.bias = nn.Buffer(bias)  # (1, 1, C)
        self.layer_norm = model.layer_norm

    def initial_buffer(self, batch_size: int) -> torch.Tensor:
        """The smoother's buffer before the first bin: (B, Z-1, C) zeros."""
        z = self.kernel.shape[-1]
        return self.kernel.new_zeros(batch_size, z - 1, self.n_features)

    def forward(
        self, chunk: torch.Tensor, smoother_buf: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.log_input:
            chunk = log_input(chunk)
        raw = torch.cat([smoother_buf, chunk], 1)
        x = F.conv1d(raw.transpose(1, 2), self.kernel, groups=self.n_features).transpose(1, 2)
        if self.has_day_layer:
            x = F.softsign(torch.bmm(x, self.weight.expand(chunk.shape[0], -1, -1)) + self.bias)
        return self.layer_norm(x), raw


class ReadOut(nn.Module):
    """The model's read-out (shared): (..., H) -> (..., 41) logits, or the phoneme
    log-probabilities of the diphone logits for ``targets: diphone``."""

    def __init__(self, model: InputLayers) -> None:
        super().__init__()
        self.linear = model.readout
        self.diphone = model.config.targets == "diphone"

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.linear(hidden)
        return phoneme_log_probs(logits) if self.diphone else logits
