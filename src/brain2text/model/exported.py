"""The modules :mod:`brain2text.model.export` writes: an encoder cut down to some days, in eval
mode (no dropout; the learned mask token only fills training masks, so it is left out).

:class:`ExportedInputs` is the base of each: the input layers of
:class:`~brain2text.model.inputs.InputLayers` with copies of the chosen days' layers (its day
``i`` is the model's day ``day_indices[i]``; ``day_layers: shared`` keeps the one layer and
``none`` has none, and then ``day`` is not read), patching as a gather (the same values as
``unfold``, so an ONNX graph keeps T free) and the read-out (logits, or phoneme
log-probabilities for diphone targets). :class:`ExportedDecoder` adds the GRU,
:class:`ExportedTransformer` the Transformer (its relative position bias read from a table of
every distance, :func:`~brain2text.model.transformer_stream.bias_table`). Every module
shares the model's smoother, LayerNorm, encoder and read-out and scripts with
``torch.jit.script``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from brain2text.model.gru import GRUDecoder
from brain2text.model.inputs import InputLayers, log_input
from brain2text.model.stream_inputs import ReadOut
from brain2text.model.transformer import (
    TransformerDecoder,
    allowed_keys,
    attention_mask,
    context_patches,
    sinusoidal_positions,
)
from brain2text.model.transformer_stream import bias_table, table_bias


class ExportedInputs(nn.Module):
    """The input layers, patching and read-out of ``model`` for the days ``day_indices``."""

    def __init__(self, model: InputLayers, day_indices: list[int]) -> None:
        super().__init__()
        like = model.readout.weight.detach()
        self.log_input = model.config.log_input
        self.smoother = model.smoother
        self.day_layers: str = model.config.day_layers
        if model.day_weights is not None and model.day_biases is not None:
            rows = day_indices if self.day_layers == "per_day" else [0]
            idx = torch.tensor(rows, dtype=torch.long, device=like.device)
            weights = model.day_weights.detach().index_select(0, idx).clone()
            biases = model.day_biases.detach().index_select(0, idx).clone()
        else:  # never read: no day layer
            weights, biases = like.new_zeros(0, 0, 0), like.new_zeros(0, 1, 0)
        self.day_weights = nn.Parameter(weights)  # (days, C, C); (1, C, C) shared
        self.day_biases = nn.Parameter(biases)  # (days, 1, C)
        self.layer_norm = model.layer_norm
        self.readout = ReadOut(model)
        self.kernel_len: int = model.config.kernel_len
        self.stride_len: int = model.config.stride_len

    def inputs(self, features: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        """(B, T, C) features, (B,) day indices -> (B, T, C) after the input layers."""
        x = log_input(features) if self.log_input else features
        x = self.smoother(x)
        if self.day_layers == "per_day":
            x = torch.bmm(x, torch.index_select(self.day_weights, 0, day))
            x = F.softsign(x + torch.index_select(self.day_biases, 0, day))
        elif self.day_layers == "shared":
            b = x.shape[0]
            x = torch.bmm(x, self.day_weights.expand(b, -1, -1))
            x = F.softsign(x + self.day_biases)
        return self.layer_norm(x)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T', C*K): windows of K bins every S bins, channel-major."""
        k, s = self.kernel_len, self.stride_len
        n_out = (x.shape[1] - k) // s + 1
        starts = torch.arange(n_out, device=x.device) * s
        taps = (starts.unsqueeze(1) + torch.arange(k, device=x.device).unsqueeze(0)).reshape(-1)
        x = torch.index_select(x, 1, taps).reshape(x.shape[0], n_out, k, x.shape[2])
        return x.transpose(2, 3).flatten(2)  # (B, T', C*K), channel-major like unfold


class ExportedDecoder(ExportedInputs):
    """A GRUDecoder for export; the initial GRU state is the learned ``h0`` or zeros,
    expanded over the batch."""

    if TYPE_CHECKING:  # a buffer; declared for the type checker only (TorchScript rejects it)
        h0: torch.Tensor

    def __init__(self, model: GRUDecoder, day_indices: list[int]) -> None:
        super().__init__(model, day_indices)
        like = model.readout.weight.detach()
        self.gru = model.gru
        directions = 2 if model.config.bidirectional else 1
        h0 = (
            model.h0.detach().clone()
            if model.h0 is not None
            else like.new_zeros(model.config.n_layers * directions, 1, model.config.n_units)
        )
        self.register_buffer("h0", h0)  # (n_layers * directions, 1, H)
        self.eval()

    def forward(self, features: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        """(B, T, C) float32 features, (B,) int64 day indices -> (B, T', 41) logits."""
        x = self.patches(self.inputs(features, day))
        h0 = self.h0.expand(-1, x.shape[0], -1).contiguous()
        x, _ = self.gru(x, h0)
        return self.readout(x)


class ExportedTransformer(ExportedInputs):
    """A TransformerDecoder for export: every patch of the (B, T, C) input is real (no
    padding), attending as in eval mode (causal with ``left_context_s``, or bidirectional)."""

    def __init__(self, model: TransformerDecoder, day_indices: list[int]) -> None:
        super().__init__(model, day_indices)
        c = model.config
        self.patch_norm = model.patch_norm
        self.patch_embedding = model.patch_embedding
        self.embedding_norm = model.embedding_norm
        self.sinusoidal = c.position == "sinusoidal"
        self.d_model = c.d_model
        self.causal = model.causal
        context = context_patches(c.left_context_s, c.stride_len) if model.causal else None
        self.context = -1 if context is None else context  # -1: unbounded
        self.bias = nn.Buffer(bias_table(model))  # (H or 1, 2D + 1)
        self.blocks = model.blocks
        self.final_norm = model.final_norm
        self.eval()

    def forward(self, features: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        """(B, T, C) float32 features, (B,) int64 day indices -> (B, T', 41) logits."""
        patches = self.patches(self.inputs(features, day))
        h = self.embedding_norm(self.patch_embedding(self.patch_norm(patches)))
        positions = torch.arange(h.shape[1], device=h.device)
        if self.sinusoidal:
            h = h + sinusoidal_positions(positions, self.d_model).to(h.dtype)
        context: int | None = None if self.context < 0 else self.context
        allowed = allowed_keys(positions, positions, self.causal, context)
        bias = table_bias(self.bias, positions, positions)
        mask = attention_mask(allowed, bias, positions, positions)
        for block in self.blocks:
            h = block(h, mask)
        return self.readout(self.final_norm(h))
