"""TransformerDecoder: binned neural features -> per-patch phoneme logits (CTC), the
time-masked Transformer of Feghhi et al. (2025).

The forward pass on (B trials, T bins, C features), K = ``kernel_len``, S = ``stride_len``:

1. The shared input layers (:class:`~brain2text.model.inputs.InputLayers`: log input,
   smoothing, day layer, LayerNorm, the learned mask token, input dropout).
2. Patches of K bins every S bins, channel-major as the GRU's (``T' = (T - K) // S + 1``), each
   embedded by LayerNorm(C*K) -> Linear(C*K, ``d_model``) -> LayerNorm(``d_model``), then
   dropout (``position: sinusoidal`` adds fixed sinusoidal positions before it).
3. ``n_layers`` pre-LayerNorm blocks: multi-head self-attention
   (``torch.nn.functional.scaled_dot_product_attention``; queries, keys and values without
   bias) whose additive mask holds the T5 relative position bias (one table of
   ``relative_buckets`` x ``n_heads``, shared by every layer) and -inf where a patch may not
   look; then a GELU feed-forward layer of ``ff_mult * d_model``; dropout ``dropout`` on the
   attention weights and on each residual branch.
4. A final LayerNorm and the read-out (:meth:`~brain2text.model.inputs.InputLayers.read_out`).

Who attends to whom: ``bidirectional``: every real patch (with ``n_bins``, padding patches
are no one's keys); causal: a patch sees itself and the ``c`` patches before it,
``c = floor(left_context_s / (BIN_SECONDS * S))`` (all of them when ``left_context_s`` is None);
in training with ``left_context_train_s = (lo, hi)`` every forward pass draws its context
uniformly in [lo, hi] s from torch's global generator.

The pieces are small functions and methods on absolute patch positions
(:func:`allowed_keys`, :meth:`TransformerDecoder.position_bias`,
:meth:`TransformerBlock.heads` / :meth:`TransformerBlock.attend`), so a caller holding a
key/value cache runs the same arithmetic chunk by chunk.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from brain2text.config import ModelConfig
from brain2text.data.dataset import N_FEATURES
from brain2text.data.manifest import BIN_SECONDS
from brain2text.model.inputs import InputLayers, Outputs, n_outputs

__all__ = [
    "TransformerBlock",
    "TransformerDecoder",
    "allowed_keys",
    "attention_mask",
    "context_patches",
    "relative_bucket",
    "sinusoidal_positions",
]


def relative_bucket(
    relative: torch.Tensor, n_buckets: int, max_distance: int, bidirectional: bool
) -> torch.Tensor:
    """T5's bucket of each ``key - query`` distance in patches (long, same shape).

    Bidirectional: half the buckets for keys before the query (and itself), half for keys
    after it; causal: every bucket for keys before it, keys after it all in bucket 0. Within a
    side, distances below half its buckets have a bucket each; longer ones share buckets
    spaced logarithmically up to ``max_distance``, beyond which they all fall in the last."""
    if bidirectional:
        n_buckets //= 2
        offset = (relative > 0).long() * n_buckets
        distance = relative.abs()
    else:
        offset = torch.zeros_like(relative, dtype=torch.long)
        distance = (-relative).clamp(min=0)
    exact = max(n_buckets // 2, 1)
    if max_distance > exact:
        scale = (n_buckets - exact) / math.log(max_distance / exact)
        ratio = distance.clamp(min=1).float() / exact
        large = exact + (torch.log(ratio) * scale).long()
    else:  # no room for log-spaced buckets: every long distance shares the last one
        large = torch.full_like(distance, n_buckets - 1)
    large = large.clamp(max=n_buckets - 1)
    return offset + torch.where(distance < exact, distance.long(), large)


def context_patches(seconds: float | None, stride_len: int) -> int | None:
    """The patches ``seconds`` of left context span: ``floor(seconds / (BIN_SECONDS * S))``
    (None: unbounded)."""
    if seconds is None:
        return None
    return int(math.floor(seconds / (BIN_SECONDS * stride_len) + 1e-9))


def allowed_keys(
    queries: torch.Tensor, keys: torch.Tensor, causal: bool, context: int | None
) -> torch.Tensor:
    """(Tq, Tk) bool: which keys (absolute patch positions ``keys``) each query (``queries``)
    may attend to. Causal: keys ``q - context .. q``; otherwise all of them."""
    relative = keys[None, :] - queries[:, None]
    if not causal:
        return torch.ones_like(relative, dtype=torch.bool)
    allowed = relative <= 0
    if context is not None:
        allowed = allowed & (relative >= -context)
    return allowed


def attention_mask(
    allowed: torch.Tensor,
    bias: torch.Tensor,
    queries: torch.Tensor,
    keys: torch.Tensor,
    n_frames: torch.Tensor | None = None,
) -> torch.Tensor:
    """The additive attention mask: ``bias`` (1 or H, Tq, Tk) where ``allowed`` (Tq, Tk),
    -inf elsewhere; with ``n_frames`` (B,) a trial's padding patches are also masked as keys
    (except each padding query's own key, so that no row is all -inf). (B or 1, H or 1, Tq,
    Tk)."""
    mask = allowed[None, None]  # (1, 1, Tq, Tk)
    if n_frames is not None:
        real = keys[None, :] < n_frames[:, None]  # (B, Tk)
        itself = keys[None, :] == queries[:, None]  # (Tq, Tk)
        mask = mask & (real[:, None, None, :] | itself[None, None])
    blocked = torch.full((), float("-inf"), dtype=bias.dtype, device=bias.device)
    return torch.where(mask, bias[None] if bias.dim() == 3 else bias, blocked)


def sinusoidal_positions(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Fixed sinusoidal encodings (T, d_model) of absolute ``positions`` (T,): sines in the
    even columns, cosines in the odd ones, wavelengths from 2 pi to 10000 * 2 pi."""
    half = (d_model + 1) // 2
    rates = torch.exp(
        torch.arange(half, dtype=torch.float32, device=positions.device)
        * (-2.0 * math.log(10000.0) / d_model)
    )
    angles = positions.float()[:, None] * rates[None, :]  # (T, half)
    encoding = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (T, 2 * half)
    return encoding[:, :d_model]


class TransformerBlock(nn.Module):
    """One pre-LayerNorm block: self-attention, then the feed-forward layer, each a residual."""

    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout_p = dropout
        self.attention_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.ff_norm = nn.LayerNorm(d_model)
        self.ff_in = nn.Linear(d_model, ff_mult * d_model)
        self.ff_out = nn.Linear(ff_mult * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The queries, keys and values (each (B, H, T, d_model / H)) of (B, T, d_model)."""
        b, t, d = x.shape
        qkv = self.qkv(self.attention_norm(x)).view(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The attention branch's output (B, Tq, d_model) for queries ``q`` over keys ``k``
        and values ``v`` (those of earlier chunks too, for a caller with a cache) under the
        additive ``mask`` (:func:`attention_mask`)."""
        p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=p)
        return self.dropout(self.out(out.transpose(1, 2).flatten(2)))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward branch's output (B, T, d_model)."""
        hidden = self.dropout(F.gelu(self.ff_in(self.ff_norm(x))))
        return self.dropout(self.ff_out(hidden))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.heads(x)
        x = x + self.attend(q, k, v, mask)
        return x + self.feed_forward(x)


class TransformerDecoder(InputLayers):
    def __init__(
        self,
        config: ModelConfig,
        n_days: int,
        n_features: int = N_FEATURES,
        mask_token: bool = False,
    ) -> None:
        super().__init__(config, n_days, n_features, mask_token)
        d, width = config.d_model, n_features * config.kernel_len
        self.patch_norm = nn.LayerNorm(width)
        self.patch_embedding = nn.Linear(width, d)
        self.embedding_norm = nn.LayerNorm(d)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.relative_bias = (
            nn.Embedding(config.relative_buckets, config.n_heads)
            if config.position == "relative"
            else None
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(d, config.n_heads, config.ff_mult, config.dropout)
            for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(d)
        self.readout = nn.Linear(d, n_outputs(config))

    @property
    def causal(self) -> bool:
        return not self.config.bidirectional

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) input-layer outputs -> (B, T', C*K) patches, channel-major as the GRU's."""
        k, s = self.config.kernel_len, self.config.stride_len
        return x.unfold(1, k, s).flatten(2)

    def embed(self, patches: torch.Tensor, first: int = 0) -> torch.Tensor:
        """(B, T', C*K) patches -> (B, T', d_model); ``first``: the absolute position of the
        first patch (sinusoidal positions)."""
        h = self.embedding_norm(self.patch_embedding(self.patch_norm(patches)))
        if self.config.position == "sinusoidal":
            positions = torch.arange(first, first + h.shape[1], device=h.device)
            h = h + sinusoidal_positions(positions, h.shape[-1]).to(h.dtype)
        return self.embedding_dropout(h)

    def position_bias(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The relative position bias (H, Tq, Tk) between absolute patch positions; zeros
        (1, Tq, Tk) with sinusoidal positions."""
        if self.relative_bias is None:
            return torch.zeros(1, len(queries), len(keys), device=queries.device)
        c = self.config
        buckets = relative_bucket(
            keys[None, :] - queries[:, None],
            c.relative_buckets,
            c.relative_max_distance,
            c.bidirectional,
        )
        return self.relative_bias(buckets).permute(2, 0, 1)

    def left_context(self) -> int | None:
        """The patches of left context of this forward pass: a draw from
        ``left_context_train_s`` in training, else ``left_context_s`` (None: unbounded or
        bidirectional)."""
        c = self.config
        if not self.causal:
            return None
        seconds = c.left_context_s
        if self.training and c.left_context_train_s is not None:
            lo, hi = c.left_context_train_s
            seconds = lo + (hi - lo) * float(torch.rand(()).item())
        return context_patches(seconds, c.stride_len)

    def mask(
        self, n_patches: int, n_bins: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor:
        """The additive attention mask of a whole trial's ``n_patches`` patches."""
        positions = torch.arange(n_patches, device=device)
        allowed = allowed_keys(positions, positions, self.causal, self.left_context())
        n_frames = None if n_bins is None else self.output_lengths(n_bins.to(device))
        bias = self.position_bias(positions, positions)
        return attention_mask(allowed, bias, positions, positions, n_frames)

    def forward(
        self,
        x: torch.Tensor,
        day_idx: torch.Tensor,
        n_bins: torch.Tensor | None = None,
        time_mask: torch.Tensor | None = None,
        diphones: bool = False,
    ) -> Outputs:
        """(B, T, C) features and (B,) day indices -> (B, T', 41) logits (see the module
        docstring; ``n_bins``: each trial's real length, so that a trial's logits are the
        same in any batch as alone; ``time_mask``: (B, T) bins the learned mask token
        replaces)."""
        h = self.embed(self.patches(self.inputs(x, day_idx, time_mask)))
        mask = self.mask(h.shape[1], n_bins, h.device)
        for block in self.blocks:
            h = block(h, mask)
        return self.read_out(self.final_norm(h), diphones)
