"""The streaming form of a causal encoder for ONNX: one step per ``stride_len`` bins.

The streaming steps of :mod:`brain2text.model.streaming` take chunks of any size, which needs a
data-dependent choice of frames (and skips the encoder when a chunk completes none): fine for
TorchScript, not for a static ONNX graph. Clinical decoders step at a fixed rate, so the ONNX
form takes exactly ``S = stride_len`` bins (80 ms for S = 4 and 20 ms bins), which complete at
most one output frame, always the window ending at offset ``(K - 1) mod S`` of the chunk
(K = kernel_len): :class:`FrameStep` for the GRU, :class:`TransformerFrameStep` for a causal
Transformer. Inputs and outputs, for one trial:

- ``chunk`` (1, S, C) float32, ``smoother_buf`` (1, Z-1, C), ``patch_buf`` (1, K-1, C), the
  encoder's state, ``count`` (1,) int64 (bins before this chunk, a multiple of S). The GRU's
  state is ``h`` (n_layers, 1, H); the Transformer's ``keys`` and ``values`` (n_layers, 1,
  n_heads, c, d_model / n_heads), a fixed-size cache of the c patches of its left context
  (``model.left_context_s``, which must be set: an unbounded context has no fixed-size
  cache), slot i holding the patch c - i before the next one (slots before the trial's first
  patch are zeros, masked);
- outputs ``logits`` (1, 1, 41), ``ready`` (1,) bool (whether the chunk completed a frame: false
  for the chunks before the first K bins; the encoder's state is then left as it was) and the
  new states, ``next_<name>``.

The initial state is zeros, ``h0`` (the GRU's learned initial state or zeros) and count 0; the
sidecar (``<out>.json``) lists the state's names and shapes. A trial whose length is not a
multiple of S ends with a chunk padded with zeros: frames ending past the trial's last bin are
not its frames (``T' = (T - K) // S + 1`` of them are), and a causal frame never reads a later
bin, so the ones kept are exact. :class:`OnnxStream` runs the exported file with onnxruntime
that way.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brain2text.atomic import atomic_write_bytes
from brain2text.errors import ConfigError, DataError
from brain2text.model.export import DEFAULT_OPSET, onnx_bytes, resolve_days, write_sidecar
from brain2text.model.factory import SpeechModel
from brain2text.model.gru import GRUDecoder
from brain2text.model.streaming import StreamStep, check_streamable
from brain2text.model.transformer import TransformerDecoder
from brain2text.model.transformer_stream import TransformerStreamStep, table_bias
from brain2text.phonemes import N_CLASSES

STATE_NAMES = ("smoother_buf", "patch_buf", "h", "count")
TRANSFORMER_STATE_NAMES = ("smoother_buf", "patch_buf", "keys", "values", "count")
UNBOUNDED_CONTEXT = (
    "model.left_context_s is unset: the ONNX streaming step holds a fixed-size key/value "
    "cache, which needs a bounded left context (stream from Python or TorchScript, whose "
    "cache grows, or train with model.left_context_s set)"
)


class FrameStep(nn.Module):
    """A :class:`StreamStep`'s buffers and per-bin pass (``self.stream``), with a fixed chunk
    of S bins and at most one frame a step (see the module docstring)."""

    state_names = STATE_NAMES

    def __init__(self, model: GRUDecoder, day_index: int) -> None:
        super().__init__()
        self.stream = StreamStep(model, day_index)
        self.kernel_len = self.stream.kernel_len
        self.stride_len = self.stream.stride_len
        self.n_features = self.stream.n_features
        self.offset = (self.kernel_len - 1) % self.stride_len  # where a chunk's frame ends
        self.eval()

    def initial_state(self) -> tuple[torch.Tensor, ...]:
        """``(smoother_buf, patch_buf, h, count)`` of one trial before its first bin."""
        smoother_buf, patch_buf, count, h = self.stream.initial_state(1)
        return smoother_buf, patch_buf, h, count

    def forward(
        self,
        chunk: torch.Tensor,
        smoother_buf: torch.Tensor,
        patch_buf: torch.Tensor,
        h: torch.Tensor,
        count: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x, raw = self.stream.inputs(chunk, smoother_buf)  # (1, S, C)
        seq = torch.cat([patch_buf, x], 1)  # row i is bin count - K + 1 + i
        window = seq[:, self.offset : self.offset + self.kernel_len]  # (1, K, C)
        patch = window.transpose(1, 2).reshape(1, 1, -1)  # channel-major, as unfold
        out, h_next = self.stream.gru(patch, h)
        ready = count + self.offset >= self.kernel_len - 1  # (1,)
        h_next = torch.where(ready.view(1, 1, 1), h_next, h)
        s = self.stride_len
        return (self.stream.readout(out), ready, raw[:, s:], seq[:, s:], h_next, count + s)


class TransformerFrameStep(nn.Module):
    """A :class:`TransformerStreamStep`'s modules (``self.stream``) with a fixed chunk of S
    bins, at most one frame a step, and a fixed-size key/value cache of the left context's
    c patches (see the module docstring)."""

    state_names = TRANSFORMER_STATE_NAMES

    def __init__(self, model: TransformerDecoder, day_index: int) -> None:
        super().__init__()
        self.stream = TransformerStreamStep(model, day_index)
        if self.stream.context < 0:
            raise ConfigError(UNBOUNDED_CONTEXT)
        self.context = self.stream.context
        self.kernel_len = self.stream.kernel_len
        self.stride_len = self.stream.stride_len
        self.n_features = self.stream.n_features
        self.offset = (self.kernel_len - 1) % self.stride_len  # where a chunk's frame ends
        self.eval()

    def initial_state(self) -> tuple[torch.Tensor, ...]:
        """``(smoother_buf, patch_buf, keys, values, count)`` of one trial before its first
        bin: the caches are c zero slots, masked until real patches fill them."""
        smoother_buf, patch_buf, count, keys, _ = self.stream.initial_state(1)
        n_layers, b, n_heads, _, head_dim = keys.shape
        cache = keys.new_zeros(n_layers, b, n_heads, self.context, head_dim)
        return smoother_buf, patch_buf, cache, cache.clone(), count

    def forward(
        self,
        chunk: torch.Tensor,
        smoother_buf: torch.Tensor,
        patch_buf: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        count: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        step, c = self.stream, self.context
        x, raw = step.inputs(chunk, smoother_buf)  # (1, S, C)
        seq = torch.cat([patch_buf, x], 1)  # row i is bin count - K + 1 + i
        window = seq[:, self.offset : self.offset + self.kernel_len]  # (1, K, C)
        patch = window.transpose(1, 2).reshape(1, 1, -1)  # channel-major, as unfold
        ready = count + self.offset >= self.kernel_len - 1  # (1,)
        query = (count + self.offset - (self.kernel_len - 1)).clamp(min=0) // self.stride_len
        positions = query - c + torch.arange(c + 1)  # (c + 1,): the cache's slots, then itself
        bias = table_bias(step.bias, query, positions)  # (H or 1, 1, c + 1)
        blocked = torch.full((), float("-inf"), dtype=bias.dtype)
        mask = torch.where(positions >= 0, bias, blocked)[None]  # (1, H or 1, 1, c + 1)
        h = step.embed(patch, query)
        new_keys, new_values = [], []
        for i, block in enumerate(step.blocks):
            h, k, v = block(h, keys[i], values[i], mask)
            new_keys.append(k[:, :, 1:])
            new_values.append(v[:, :, 1:])
        keep = ready.view(1, 1, 1, 1, 1)
        s = self.stride_len
        return (
            step.readout(step.final_norm(h)),
            ready,
            raw[:, s:],
            seq[:, s:],
            torch.where(keep, torch.stack(new_keys), keys),
            torch.where(keep, torch.stack(new_values), values),
            count + s,
        )


def frame_step(model: SpeechModel, day_index: int) -> FrameStep | TransformerFrameStep:
    """The ONNX streaming step of ``model``'s kind for day ``day_index``."""
    if isinstance(model, TransformerDecoder):
        return TransformerFrameStep(model, day_index)
    return FrameStep(model, day_index)


def export_onnx_stream(
    model: SpeechModel,
    days_all: list[str],
    day: str,
    out: Path,
    info: dict[str, Any],
    opset: int = DEFAULT_OPSET,
) -> Path:
    """The streaming form of ``model`` for ``day`` as ONNX, and its sidecar."""
    [index] = resolve_days(days_all, [day])
    step = frame_step(copy.deepcopy(model).cpu(), index)  # the caller's model is not moved
    names = step.state_names
    initial = step.initial_state()
    example = (torch.zeros(1, step.stride_len, step.n_features), *initial)
    data = onnx_bytes(
        step,
        example,
        opset,
        input_names=["chunk", *names],
        output_names=["logits", "ready", *(f"next_{n}" for n in names)],
    )
    atomic_write_bytes(Path(out), lambda f: f.write(data))
    state = {name: list(t.shape) for name, t in zip(names, initial, strict=True)}
    learned_h0 = isinstance(model, GRUDecoder) and model.h0 is not None
    streaming: dict[str, Any] = {"chunk_bins": step.stride_len, "state_shapes": state}
    if isinstance(model, GRUDecoder):
        streaming["initial_h"] = "h0.npy beside this file" if learned_h0 else "zeros"
    else:
        streaming["context_patches"] = step.context
    write_sidecar(Path(out), {**info, "streaming": streaming}, "onnx-stream", opset)
    if learned_h0:  # h, the learned initial state
        np.save(Path(out).with_name(Path(out).name + ".h0.npy"), initial[2].numpy())
    return Path(out)


class OnnxStream:
    """Runs an exported streaming step with onnxruntime: ``push`` any number of bins
    (``h0``: a GRU's learned initial state, the ``.h0.npy`` beside the file)."""

    def __init__(
        self, path: Path, h0: np.ndarray | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self.chunk_bins, self.n_features = shapes["chunk"][1], shapes["chunk"][2]
        self.names = [n for n in shapes if n != "chunk"]  # the state, in the graph's order
        self.state = {
            n: np.zeros(shapes[n], np.int64 if n == "count" else np.float32) for n in self.names
        }
        if h0 is not None:
            self.state["h"] = h0.astype(np.float32)
        self.pending = np.zeros((0, self.n_features), np.float32)

    def push(self, bins: np.ndarray) -> np.ndarray:
        """Frames (m, 41) completed by ``bins`` (n, C): one step per ``chunk_bins`` bins."""
        bins = np.asarray(bins, np.float32)
        if bins.ndim != 2 or bins.shape[1] != self.n_features:
            raise DataError(f"chunk of shape {bins.shape}: expected (n, {self.n_features})")
        self.pending = np.concatenate([self.pending, bins])
        frames = []
        while len(self.pending) >= self.chunk_bins:
            chunk, self.pending = self.pending[: self.chunk_bins], self.pending[self.chunk_bins :]
            logits, ready, *state = self.session.run(None, {"chunk": chunk[None], **self.state})
            self.state = dict(zip(self.names, state, strict=True))
            if ready[0]:
                frames.append(logits[0, 0])
        return np.stack(frames) if frames else np.zeros((0, N_CLASSES), np.float32)


def check_stream_export(model: SpeechModel, day: str | None) -> str:
    """The one day a streaming export is for (a one-line ConfigError otherwise)."""
    check_streamable(model)
    if isinstance(model, TransformerDecoder) and model.config.left_context_s is None:
        raise ConfigError(UNBOUNDED_CONTEXT)
    if day is None:
        raise ConfigError("--streaming: give the day its input layer is for (--day D)")
    return day
