"""Real-time decoding of a causal encoder, chunk by chunk.

A model streams when every output frame depends only on bins that have arrived
(:func:`check_streamable`): a unidirectional GRU, or a causal Transformer
(:mod:`brain2text.model.transformer_stream`), with a causal smoother (or none). Each kind has a
step module, one step as a pure function of tensors (``torch.jit.script``-able, no Python-side
state); :class:`Stream` holds the state of one trial and checks its input. The input layers
(``log_input``, smoother, day layer of any ``day_layers``, LayerNorm) and the read-out (logits,
or phoneme log-probabilities for diphone targets) are
:mod:`brain2text.model.stream_inputs`'s.

The GRU's :class:`StreamStep`, with ``Z = smooth_kernel_size`` (1 without smoothing),
``K = kernel_len``, ``S = stride_len`` and ``c`` the bins seen before a chunk of ``n`` bins,
keeps for B trials run in lockstep:

- ``smoother_buf`` (B, Z-1, C): the last Z-1 input bins (after ``log_input``), zeros before
  the trial (the causal smoother's left zero padding);
- ``patch_buf`` (B, K-1, C): the last K-1 bins after the input layers (zeros before the trial;
  they only fill windows that start before bin 0, never emitted);
- ``count`` (1,) int64: ``c``, shared by the batch, which fixes the stride phase;
- ``h`` (n_layers, B, n_units): the GRU state (the learned ``h0`` or zeros at the start).

A step runs the chunk's bins through the input layers and cuts ``[patch_buf, new bins]`` into
the n windows of K bins that end at the new bins. The window ending at bin ``c + r`` starts at
``b = c + r - K + 1``; it is offline frame ``b / S`` when ``b >= 0`` and ``b % S == 0``, so
frame j is emitted by the chunk holding its last bin ``j*S + K - 1``. Those windows, flattened
channel-major as ``unfold`` does, go through the GRU from ``h`` and the read-out: the
concatenated logits of a trial equal ``model(x, day)[0]`` up to float rounding. Input dropout
and the GRU's inter-layer dropout are never applied (eval pass). The step is built for one day:
that day's affine weights are copied at construction; the smoother kernel, LayerNorm, GRU and
read-out are the model's own modules, shared.

Export: ``torch.jit.script(StreamStep(model, day))`` works (the frame count m is computed with
tensor ops; a step that completes no frame skips the GRU, which refuses empty sequences, in a
scripted ``if``). ``torch.jit.trace`` would freeze one chunk's phase, and ``torch.export`` cannot
guard on the data-dependent ``m > 0``; use the scripted module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brain2text.errors import DataError
from brain2text.model.factory import SpeechModel
from brain2text.model.gru import GRUDecoder
from brain2text.model.stream_inputs import BinInputs, ReadOut, check_streamable
from brain2text.model.transformer import TransformerDecoder
from brain2text.model.transformer_stream import TransformerStreamStep
from brain2text.phonemes import N_CLASSES

__all__ = ["Stream", "StreamStep", "as_bins", "check_streamable", "stream_step"]


class StreamStep(nn.Module):
    """One streaming step of a GRU ``model`` for day ``day_index`` (see the module docstring):
    ``(chunk (B, n, C), smoother_buf, patch_buf, count, h) -> (logits (B, m, 41), smoother_buf,
    patch_buf, count, h)``, m the frames whose last bin is in the chunk (n >= 1)."""

    def __init__(self, model: GRUDecoder, day_index: int) -> None:
        super().__init__()
        check_streamable(model)
        self.inputs = BinInputs(model, day_index)
        self.n_features = model.n_features
        self.kernel_len = model.config.kernel_len
        self.stride_len = model.config.stride_len
        self.n_units = model.config.n_units
        like = self.inputs.kernel
        h0 = (
            torch.zeros(
                model.config.n_layers, 1, self.n_units, dtype=like.dtype, device=like.device
            )
            if model.h0 is None
            else model.h0.detach().clone()
        )
        self.h0 = nn.Buffer(h0)  # (n_layers, 1, H)
        self.gru = model.gru
        self.readout = ReadOut(model)

    @torch.jit.export
    def initial_state(
        self, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(smoother_buf, patch_buf, count, h)`` before the first bin of ``batch_size`` trials."""
        like = self.inputs.kernel
        return (
            self.inputs.initial_buffer(batch_size),
            like.new_zeros(batch_size, self.kernel_len - 1, self.n_features),
            torch.zeros(1, dtype=torch.long, device=like.device),
            self.h0.expand(-1, batch_size, -1).contiguous(),
        )

    def forward(
        self,
        chunk: torch.Tensor,
        smoother_buf: torch.Tensor,
        patch_buf: torch.Tensor,
        count: torch.Tensor,
        h: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n = chunk.shape[0], chunk.shape[1]
        x, raw = self.inputs(chunk, smoother_buf)
        seq = torch.cat([patch_buf, x], 1)  # (B, K-1+n, C): row i is bin count - K + 1 + i
        starts = count + torch.arange(n, device=count.device) - (self.kernel_len - 1)
        emit = torch.nonzero((starts >= 0) & (starts % self.stride_len == 0)).squeeze(1)  # (m,)
        patches = seq.unfold(1, self.kernel_len, 1).index_select(1, emit).flatten(2)
        if emit.shape[0] > 0:
            out, h = self.gru(patches, h)  # (B, m, H)
        else:
            out = patches.new_zeros(b, 0, self.n_units)
        return self.readout(out), raw[:, n:], seq[:, n:], count + n, h


def as_bins(
    bins: object,
    n_features: int,
    dtype: torch.dtype = torch.float32,
    what: str = "chunk",
    then: str = "the stream is unchanged and still usable",
) -> torch.Tensor:
    """``bins`` (n, C) real numbers of any dtype as a tensor of ``dtype``, or a one-line
    :class:`DataError` naming ``what`` (and ending with ``then``)."""
    end = f"; {then}" if then else ""
    if isinstance(bins, torch.Tensor):
        bad = bins.dtype == torch.bool or bins.dtype.is_complex
        kind, shape = str(bins.dtype).removeprefix("torch."), tuple(bins.shape)
    else:
        try:
            bins = np.asarray(bins)
        except (TypeError, ValueError) as e:
            raise DataError(f"{what} is not an array of numbers ({e}){end}") from None
        bad = bins.dtype.kind not in "iuf"
        kind, shape = str(bins.dtype), bins.shape
    if bad:
        raise DataError(
            f"{what} of dtype {kind}: expected real numbers (floats or integers, "
            f"cast to float32){end}"
        )
    if len(shape) != 2 or shape[1] != n_features:
        raise DataError(
            f"{what} of shape {shape}: expected (bins, {n_features}), one row of "
            f"{n_features} features per bin{end}"
        )
    chunk = (
        bins
        if isinstance(bins, torch.Tensor)
        else torch.from_numpy(np.array(bins, dtype=np.float64))
    ).to(dtype)
    n_bad = int((~torch.isfinite(chunk)).sum())
    if n_bad:
        raise DataError(
            f"{what} of {shape[0]} bins: {n_bad} NaN/Inf values (after the cast to "
            f"{str(dtype).removeprefix('torch.')}){end}"
        )
    return chunk


def stream_step(model: SpeechModel, day_index: int) -> StreamStep | TransformerStreamStep:
    """The streaming step of ``model``'s kind for day ``day_index`` (a one-line ConfigError
    when the model reads ahead)."""
    if isinstance(model, TransformerDecoder):
        return TransformerStreamStep(model, day_index)
    return StreamStep(model, day_index)


class Stream:
    """Decode one trial as its bins arrive: ``push`` chunks of any size, read the new frames.

    Runs ``model`` as in eval mode (no dropout) under ``torch.no_grad()``; the modules' train or
    eval modes are restored after each push. Logits live on the model's device."""

    def __init__(self, model: SpeechModel, day_index: int) -> None:
        self.step = stream_step(model, day_index)
        self._state: tuple[torch.Tensor, ...] = tuple(self.step.initial_state(1))
        self._frames: list[torch.Tensor] = []
        self._n_bins = 0

    @property
    def n_bins(self) -> int:
        """Bins pushed so far (rejected chunks not counted)."""
        return self._n_bins

    @property
    def logits(self) -> torch.Tensor:
        """All frames so far, (T', 41) with ``T' = (n_bins - K) // S + 1`` (0 if fewer bins)."""
        if not self._frames:
            return self.step.inputs.kernel.new_zeros(0, N_CLASSES)
        return torch.cat(self._frames)

    def push(self, bins: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Add ``bins`` (n, C) and return the logits (m, 41) of the frames they complete.

        Real numbers of any dtype are cast to float32 (the model's dtype); a bad chunk (wrong
        shape, bool/complex/non-numeric, NaN/Inf) raises :class:`DataError` and changes nothing.
        An empty chunk (0, C) returns no frames."""
        step, like = self.step, self.step.inputs.kernel
        chunk = as_bins(bins, step.n_features, like.dtype).to(like.device)
        if chunk.shape[0] == 0:
            return like.new_zeros(0, N_CLASSES)
        modes = [(m, m.training) for m in step.modules()]
        step.eval()
        try:
            with torch.no_grad():
                logits, *state = step(chunk[None], *self._state)
        finally:
            for m, training in modes:
                m.training = training
        self._state = tuple(state)
        self._n_bins += chunk.shape[0]
        self._frames.append(logits[0])
        return logits[0]
