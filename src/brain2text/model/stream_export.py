"""The streaming form of a causal decoder for ONNX: one step per ``stride_len`` bins.

:class:`~brain2text.model.streaming.StreamStep` takes chunks of any size, which needs a
data-dependent choice of frames (and skips the GRU when a chunk completes none): fine for
TorchScript, not for a static ONNX graph. Clinical decoders step at a fixed rate, so the ONNX
form is :class:`FrameStep`: its chunk is exactly ``S = stride_len`` bins (80 ms for S = 4 and
20 ms bins), which completes at most one output frame, always the window ending at offset
``(K - 1) mod S`` of the chunk (K = kernel_len). Inputs and outputs, for one trial:

- ``chunk`` (1, S, C) float32, ``smoother_buf`` (1, Z-1, C), ``patch_buf`` (1, K-1, C),
  ``h`` (n_layers, 1, H), ``count`` (1,) int64 (bins before this chunk, a multiple of S);
- outputs ``logits`` (1, 1, 41), ``ready`` (1,) bool (whether the chunk completed a frame: false
  for the chunks before the first K bins; the GRU state is then left as it was) and the four
  new states.

The initial state is zeros, ``h0`` (the learned initial state or zeros) and count 0; the
sidecar (``<out>.json``) lists the shapes. A trial whose length is not a multiple of S ends
with a chunk padded with zeros: frames ending past the trial's last bin are not its frames
(``T' = (T - K) // S + 1`` of them are), and a causal frame never reads a later bin, so the
ones kept are exact. :class:`OnnxStream` runs the exported file with onnxruntime that way.
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
from brain2text.model.gru import GRUDecoder
from brain2text.model.streaming import StreamStep, check_streamable
from brain2text.phonemes import N_CLASSES

STATE_NAMES = ("smoother_buf", "patch_buf", "h", "count")


class FrameStep(nn.Module):
    """A :class:`StreamStep`'s buffers and per-bin pass (``self.stream``), with a fixed chunk
    of S bins and at most one frame a step (see the module docstring)."""

    def __init__(self, model: GRUDecoder, day_index: int) -> None:
        super().__init__()
        self.stream = StreamStep(model, day_index)
        self.kernel_len = self.stream.kernel_len
        self.stride_len = self.stream.stride_len
        self.n_features = self.stream.n_features
        self.offset = (self.kernel_len - 1) % self.stride_len  # where a chunk's frame ends
        self.eval()

    def initial_state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
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
        x, raw = self.stream.new_bins(chunk, smoother_buf)  # (1, S, C)
        seq = torch.cat([patch_buf, x], 1)  # row i is bin count - K + 1 + i
        window = seq[:, self.offset : self.offset + self.kernel_len]  # (1, K, C)
        patch = window.transpose(1, 2).reshape(1, 1, -1)  # channel-major, as unfold
        out, h_next = self.stream.gru(patch, h)
        ready = count + self.offset >= self.kernel_len - 1  # (1,)
        h_next = torch.where(ready.view(1, 1, 1), h_next, h)
        s = self.stride_len
        return (self.stream.readout(out), ready, raw[:, s:], seq[:, s:], h_next, count + s)


def export_onnx_stream(
    model: GRUDecoder,
    days_all: list[str],
    day: str,
    out: Path,
    info: dict[str, Any],
    opset: int = DEFAULT_OPSET,
) -> Path:
    """The streaming form of ``model`` for ``day`` as ONNX, and its sidecar."""
    [index] = resolve_days(days_all, [day])
    step = FrameStep(copy.deepcopy(model).cpu(), index)  # the caller's model is not moved
    example = (torch.zeros(1, step.stride_len, step.n_features), *step.initial_state())
    data = onnx_bytes(
        step,
        example,
        opset,
        input_names=["chunk", *STATE_NAMES],
        output_names=["logits", "ready", *(f"next_{n}" for n in STATE_NAMES)],
    )
    atomic_write_bytes(Path(out), lambda f: f.write(data))
    initial = step.initial_state()
    state = {name: list(t.shape) for name, t in zip(STATE_NAMES, initial, strict=True)}
    write_sidecar(
        Path(out),
        {
            **info,
            "streaming": {
                "chunk_bins": step.stride_len,
                "state_shapes": state,
                "initial_h": "h0.npy beside this file" if model.h0 is not None else "zeros",
            },
        },
        "onnx-stream",
        opset,
    )
    if model.h0 is not None:  # h, the learned initial state
        np.save(Path(out).with_name(Path(out).name + ".h0.npy"), initial[2].numpy())
    return Path(out)


class OnnxStream:
    """Runs an exported streaming step with onnxruntime: ``push`` any number of bins."""

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
        self.state = {
            n: np.zeros(shapes[n], np.int64 if n == "count" else np.float32) for n in STATE_NAMES
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
            self.state = dict(zip(STATE_NAMES, state, strict=False))
            if ready[0]:
                frames.append(logits[0, 0])
        return np.stack(frames) if frames else np.zeros((0, N_CLASSES), np.float32)


def check_stream_export(model: GRUDecoder, day: str | None) -> str:
    """The one day a streaming export is for (a one-line ConfigError otherwise)."""
    check_streamable(model)
    if day is None:
        raise ConfigError("--streaming: give the day its input layer is for (--day D)")
    return day
