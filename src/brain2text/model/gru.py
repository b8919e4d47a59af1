"""GRUDecoder: binned neural features -> per-step phoneme logits (CTC).

The forward pass, with shapes (B trials, T bins, C features: 256 for the 2023 data, 512 for
Brain-to-Text '25, K=kernel_len, S=stride_len):

1-3. The shared input layers (:class:`~brain2text.model.inputs.InputLayers`): Gaussian
   smoothing along time, per feature (20-tap kernel, sigma ``gaussian_smooth_width`` bins,
   torch "same" padding: 9 zeros left and 10 right for the even kernel, as the reference;
   ``causal_smoothing``: all 19 on the left, so the model can run as bins arrive); the per-day
   affine input layer ``x @ W[day] + b[day]`` (W = identity, b = 0 at init) and softsign
   (``day_layers``); LayerNorm over the C features (``use_layer_norm``), then dropout on the
   inputs (``input_dropout``): both after the softsign and before patching, as in the fork
   that introduced them.
4. Patching: windows of K bins every S bins, concatenated -> (B, T', C*K) with
   ``T' = (T - K) // S + 1`` (channel-major order, identical to the reference's ``nn.Unfold``).
5. GRU (``n_layers`` x ``n_units``, dropout between layers, optionally bidirectional);
   weight_hh orthogonal, weight_ih Xavier-uniform, biases left at torch's default
   (uniform in +-1/sqrt(n_units)), as the reference; zero initial state, or a learned one
   (``learnable_h0``, one Xavier-initialised vector per layer and direction, as the
   Brain-to-Text '25 baseline).
6. Linear read-out to 41 classes (40 phoneme symbols + CTC blank at index 0), or to the diphone
   classes (``targets: diphone``).

Unlike the reference, no unused per-day ``nn.Linear`` layers are built. The CTC input length is
:func:`brain2text.model.ctc.ctc_input_lengths` (``model.ctc_input_lengths``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from brain2text.config import ModelConfig
from brain2text.data.dataset import N_FEATURES
from brain2text.model.inputs import GaussianSmoother, InputLayers, Outputs, n_outputs

__all__ = ["GRUDecoder", "GaussianSmoother", "count_parameters", "describe_size"]


class GRUDecoder(InputLayers):
    def __init__(
        self,
        config: ModelConfig,
        n_days: int,
        n_features: int = N_FEATURES,
        mask_token: bool = False,
    ) -> None:
        super().__init__(config, n_days, n_features, mask_token)
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
        self.readout = nn.Linear(config.n_units * directions, n_outputs(config))

    def forward(
        self,
        x: torch.Tensor,
        day_idx: torch.Tensor,
        n_bins: torch.Tensor | None = None,
        time_mask: torch.Tensor | None = None,
        diphones: bool = False,
    ) -> Outputs:
        """(B, T, C) features and (B,) day indices -> (B, T', 41) logits
        (:meth:`~brain2text.model.inputs.InputLayers.read_out`; ``time_mask``: (B, T) bins
        the learned mask token replaces).

        With ``n_bins`` (each trial's real length) a bidirectional GRU reads each trial as a
        packed sequence, so its backward direction starts at the trial's last real frame, not
        in the batch's padding: a trial's logits are then the same in any batch as alone.
        (Training passes none, as the reference; a unidirectional GRU never reads padding
        before a real frame, so it needs no packing.)"""
        x = self.inputs(x, day_idx, time_mask)  # (B, T, C)
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
        return self.read_out(x, diphones)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_size(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"
