"""Real-time decoding of a causal :class:`~brain2text.model.transformer.TransformerDecoder`,
chunk by chunk, with a key/value cache per layer.

A causal Transformer's patch j attends to itself and the ``c`` patches before it (``c`` the
left context's patches, :func:`~brain2text.model.transformer.context_patches` of
``model.left_context_s``; unbounded when it is None), so once its last bin has arrived its
output is final. :class:`TransformerStreamStep` is one step as a pure function of tensors
(``torch.jit.script``-able), with ``Z = smooth_kernel_size``, ``K = kernel_len``,
``S = stride_len``, for B trials in lockstep:

- ``smoother_buf`` (B, Z-1, C), ``patch_buf`` (B, K-1, C), ``count`` (1,) int64: the input
  layers' buffers and the bins seen, as the GRU's step
  (:class:`~brain2text.model.streaming.StreamStep`) keeps them;
- ``keys``, ``values`` (n_layers, B, n_heads, L, d_model / n_heads): each layer's keys and
  values of the last L patches, those right before the next one. L grows to ``c`` and stays
  there (older patches are no query's keys any more); with an unbounded left context
  (``left_context_s`` None) nothing is ever dropped and the cache grows by a patch every S
  bins for the whole trial.

A step runs the chunk through the input layers, cuts the m patches whose last bin it holds
(absolute positions ``p .. p+m-1``, emitted as the GRU's step emits frames), embeds them (the
model's patch LayerNorm, embedding and LayerNorm, plus the sinusoidal positions of ``p ..``),
and in each block attends from the new patches to ``[cached, new]`` keys and values under the
model's causal, context-bounded mask and relative position bias, then keeps the last ``c``.
The read-out's output for a trial equals ``model(x, day)[0]`` (eval mode) up to float
rounding. The relative position bias is read from a table of the model's bias at every
distance ``-D .. D``, ``D = relative_max_distance`` (longer ones share the last bucket;
:func:`bias_table`), copied at construction with the day's input layer; the other modules
are the model's own.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from brain2text.model.stream_inputs import BinInputs, ReadOut, check_streamable
from brain2text.model.transformer import (
    TransformerBlock,
    TransformerDecoder,
    allowed_keys,
    attention_mask,
    context_patches,
    relative_bucket,
    sinusoidal_positions,
)

KvState = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def bias_table(model: TransformerDecoder) -> torch.Tensor:
    """(H, 2D + 1): the model's relative position bias of a key ``r = key - query`` patches
    away, for ``r = -D .. D``, ``D = relative_max_distance`` (every longer distance on a side
    has the bias of ``D`` there: the last bucket); zeros (1, 1) with sinusoidal positions."""
    like = model.readout.weight.detach()
    if model.relative_bias is None:
        return like.new_zeros(1, 1)
    c = model.config
    d = c.relative_max_distance
    relative = torch.arange(-d, d + 1, device=like.device)
    buckets = relative_bucket(relative, c.relative_buckets, d, c.bidirectional)
    return model.relative_bias.weight.detach()[buckets].t().clone()


def table_bias(table: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The bias (H or 1, Tq, Tk) of :func:`bias_table` ``table`` between absolute patch
    positions: :meth:`~brain2text.model.transformer.TransformerDecoder.position_bias`'s
    values."""
    d = (table.shape[1] - 1) // 2
    relative = (keys[None, :] - queries[:, None]).clamp(-d, d) + d
    return table[:, relative.flatten()].unflatten(1, [queries.shape[0], keys.shape[0]])


class CachedBlock(nn.Module):
    """A :class:`~brain2text.model.transformer.TransformerBlock` (the model's own) on new
    patches (B, m, d_model) with the keys and values of the cached ones:
    ``(h, past_keys, past_values, mask) -> (h, keys, values)``, ``keys`` and ``values`` the
    past ones and the new patches' (B, H, L + m, d_model / H)."""

    def __init__(self, block: TransformerBlock) -> None:
        super().__init__()
        self.block = block

    def forward(
        self,
        h: torch.Tensor,
        past_keys: torch.Tensor,
        past_values: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.block.heads(h)
        k = torch.cat([past_keys, k], 2)
        v = torch.cat([past_values, v], 2)
        h = h + self.block.attend(q, k, v, mask)
        return h + self.block.feed_forward(h), k, v


class TransformerStreamStep(nn.Module):
    """One streaming step of a causal Transformer for day ``day_index`` (see the module
    docstring): ``(chunk (B, n, C), smoother_buf, patch_buf, count, keys, values) ->
    (logits (B, m, 41), smoother_buf, patch_buf, count, keys, values)``."""

    def __init__(self, model: TransformerDecoder, day_index: int) -> None:
        super().__init__()
        check_streamable(model)
        c = model.config
        self.inputs = BinInputs(model, day_index)
        self.n_features = model.n_features
        self.kernel_len = c.kernel_len
        self.stride_len = c.stride_len
        context = context_patches(c.left_context_s, c.stride_len)
        self.context = -1 if context is None else context  # -1: unbounded
        self.n_layers, self.n_heads, self.d_model = c.n_layers, c.n_heads, c.d_model
        self.patch_norm = model.patch_norm
        self.patch_embedding = model.patch_embedding
        self.embedding_norm = model.embedding_norm
        self.sinusoidal = c.position == "sinusoidal"
        self.bias = nn.Buffer(bias_table(model))  # (H or 1, 2D + 1)
        self.blocks = nn.ModuleList(CachedBlock(cast(TransformerBlock, b)) for b in model.blocks)
        self.final_norm = model.final_norm
        self.readout = ReadOut(model)

    @torch.jit.export
    def initial_state(self, batch_size: int) -> KvState:
        """``(smoother_buf, patch_buf, count, keys, values)`` before the first bin of
        ``batch_size`` trials (empty caches)."""
        like = self.inputs.kernel
        cache = like.new_zeros(
            self.n_layers, batch_size, self.n_heads, 0, self.d_model // self.n_heads
        )
        return (
            self.inputs.initial_buffer(batch_size),
            like.new_zeros(batch_size, self.kernel_len - 1, self.n_features),
            torch.zeros(1, dtype=torch.long, device=like.device),
            cache,
            cache.clone(),
        )

    def embed(self, patches: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(B, m, C*K) patches at absolute ``positions`` (m,) -> (B, m, d_model)."""
        h = self.embedding_norm(self.patch_embedding(self.patch_norm(patches)))
        if self.sinusoidal:
            h = h + sinusoidal_positions(positions, self.d_model).to(h.dtype)
        return h

    def mask(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The additive mask (1, H or 1, m, L + m) of the new patches over the cached and new
        ones (absolute positions)."""
        context: int | None = None if self.context < 0 else self.context
        allowed = allowed_keys(queries, keys, True, context)
        return attention_mask(allowed, table_bias(self.bias, queries, keys), queries, keys)

    def forward(
        self,
        chunk: torch.Tensor,
        smoother_buf: torch.Tensor,
        patch_buf: torch.Tensor,
        count: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n = chunk.shape[0], chunk.shape[1]
        x, raw = self.inputs(chunk, smoother_buf)
        seq = torch.cat([patch_buf, x], 1)  # (B, K-1+n, C): row i is bin count - K + 1 + i
        starts = count + torch.arange(n, device=count.device) - (self.kernel_len - 1)
        emit = torch.nonzero((starts >= 0) & (starts % self.stride_len == 0)).squeeze(1)  # (m,)
        if emit.shape[0] == 0:
            out = self.readout(x.new_zeros(b, 0, self.d_model))
            return out, raw[:, n:], seq[:, n:], count + n, keys, values
        patches = seq.unfold(1, self.kernel_len, 1).index_select(1, emit).flatten(2)
        queries = starts.index_select(0, emit) // self.stride_len  # (m,) absolute positions
        cached = keys.shape[3]
        positions = torch.arange(cached + len(queries), device=count.device)
        positions = positions + (queries[0] - cached)
        mask = self.mask(queries, positions)
        keep = positions.shape[0] if self.context < 0 else self.context
        first = max(positions.shape[0] - keep, 0)
        h = self.embed(patches, queries)
        new_keys, new_values = [], []
        for i, block in enumerate(self.blocks):
            h, k, v = block(h, keys[i], values[i], mask)
            new_keys.append(k[:, :, first:])
            new_values.append(v[:, :, first:])
        out = self.readout(self.final_norm(h))
        return (
            out,
            raw[:, n:],
            seq[:, n:],
            count + n,
            torch.stack(new_keys),
            torch.stack(new_values),
        )
