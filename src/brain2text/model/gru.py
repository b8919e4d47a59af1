"""GRUDecoder: binned neural features -> per-step phoneme logits (CTC).

The forward pass, with shapes (B trials, T bins, C features: 256 for the 2023 data, 512 for
Brain-to-Text '25, K=kernel_len, S=stride_len):

1. Gaussian smoothing along time, per feature (20-tap kernel, sigma ``gaussian_smooth_width``
   bins, torch "same" padding: 9 zeros left and 10 right for the even kernel, as the reference;
   ``causal_smoothing``: all 19 on the left, so the model can run as bins arrive).
2. Per-day affine input layer ``x @ W[day] + b[day]`` (W = identity, b = 0 at init), softsign.
3. LayerNorm over the C features (``use_layer_norm``), then dropout on the inputs
   (``input_dropout``): both after the softsign and before patching, as in the fork that
   introduced them.
4. Patching: windows of K bins every S bins, concatenated -> (B, T', C*K) with
   ``T' = (T - K) // S + 1`` (channel-major order, identical to the reference's ``nn.Unfold``).
5. GRU (``n_layers`` x ``n_units``, dropout between layers, optionally bidirectional);
   weight_hh orthogonal, weight_ih Xavier-uniform, biases left at torch's default
   (uniform in +-1/sqrt(n_units)), as the reference; zero initial state, or a learned one
   (``learnable_h0``, one Xavier-initialised vector per layer and direction, as the
   Brain-to-Text '25 baseline).
6. Linear read-out to 41 classes (40 phoneme symbols + CTC blank at index 0).

Unlike the reference, no unused per-day ``nn.Linear`` layers are built. The CTC input length is
:func:`brain2text.model.ctc.ctc_input_lengths` (``model.ctc_input_lengths``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from brain2text.config import ModelConfig
from brain2text.data.dataset import N_FEATURES
from brain2text.model.ctc import ctc_input_lengths, output_lengths
from brain2text.phonemes import N_CLASSES


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


class GRUDecoder(nn.Module):
    def __init__(self, config: ModelConfig, n_days: int, n_features: int = N_FEATURES) -> None:
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
        self.day_weights = nn.Parameter(torch.eye(n_features).repeat(n_days, 1, 1))
        self.day_biases = nn.Parameter(torch.zeros(n_days, 1, n_features))
        self.layer_norm = nn.LayerNorm(n_features) if config.use_layer_norm else nn.Identity()
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.gru = nn.GRU(
            n_features * config.kernel_len,
            config.n_units,
            num_layers=config.n_layers,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            batch_first=True,
        )
        for name, param in self.gru.named_parameters():
            if name.startswith("weight_hh"):
                nn.init.orthogonal_(param)
            elif name.startswith("weight_ih"):
                nn.init.xavier_uniform_(param)
            # biases keep torch's default init, as the reference's
        directions = 2 if config.bidirectional else 1
        self.h0 = (
            nn.Parameter(
                nn.init.xavier_uniform_(
                    torch.empty(config.n_layers * directions, 1, config.n_units)
                )
            )
            if config.learnable_h0
            else None
        )
        self.readout = nn.Linear(config.n_units * directions, N_CLASSES)

    def output_lengths(self, n_bins: torch.Tensor) -> torch.Tensor:
        """Output frames of inputs of ``n_bins`` bins: what greedy decoding reads."""
        return output_lengths(n_bins, self.config.kernel_len, self.config.stride_len)

    def ctc_input_lengths(self, n_bins: torch.Tensor) -> torch.Tensor:
        """The input lengths the CTC loss is given (``model.ctc_input_lengths``)."""
        c = self.config
        return ctc_input_lengths(n_bins, c.kernel_len, c.stride_len, c.ctc_input_lengths)

    def forward(
        self, x: torch.Tensor, day_idx: torch.Tensor, n_bins: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, C) features and (B,) day indices -> (B, T', 41) logits.

        With ``n_bins`` (each trial's real length) a bidirectional GRU reads each trial as a
        packed sequence, so its backward direction starts at the trial's last real frame, not
        in the batch's padding: a trial's logits are then the same in any batch as alone.
        (Training passes none, as the reference; a unidirectional GRU never reads padding
        before a real frame, so it needs no packing.)"""
        x = self.smoother(x)
        # index_select, not day_weights[day_idx]: the backward of advanced indexing is
        # index_put_(accumulate=True), which on a CPU with several threads adds the trials of one
        # day with atomic adds in an order that changes from run to run (once the gathered
        # tensor has 32768 elements); index_select's backward (index_add_) adds them in order,
        # so training is bit-reproducible at any thread count
        weights = torch.index_select(self.day_weights, 0, day_idx)  # (B, C, C)
        biases = torch.index_select(self.day_biases, 0, day_idx)  # (B, 1, C)
        x = torch.bmm(x, weights) + biases  # (B, T, C)
        x = F.softsign(x)
        x = self.input_dropout(self.layer_norm(x))
        k, s = self.config.kernel_len, self.config.stride_len
        x = x.unfold(1, k, s)  # (B, T', C, K)
        x = x.flatten(2)  # (B, T', C*K), channel-major like nn.Unfold
        h0 = None if self.h0 is None else self.h0.expand(-1, x.shape[0], -1).contiguous()
        if n_bins is not None and self.config.bidirectional:
            frames = self.output_lengths(n_bins).clamp(min=1, max=x.shape[1]).cpu()
            packed = pack_padded_sequence(x, frames, batch_first=True, enforce_sorted=False)
            out, _ = self.gru(packed, h0)
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            x, _ = self.gru(x, h0)  # (B, T', H * directions)
        return self.readout(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_size(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"
