"""Export a trained :class:`~brain2text.model.gru.GRUDecoder` for machines without brain2text.

Three formats, each written atomically (a temporary file in the same folder, then
``os.replace``) with a JSON sidecar ``<out>.json`` beside it (:func:`sidecar`): the phoneme
symbols in class order (CTC blank at 0), the feature count, names and normalisation, the days in
index order, ``kernel_len``/``stride_len`` (``T' = (T - kernel_len) // stride_len + 1``), whether
the model is causal, the model config, and the format, opset and torch version.

* **ONNX** (:func:`export_onnx`): the graph of :class:`ExportedDecoder` with its weights; inputs
  ``features`` float32 (B, T, C) and ``day`` int64 (B,) (an index into the sidecar's ``days``),
  output ``logits`` float32 (B, T', 41); B and T are free. Load with onnxruntime::

      sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
      logits = sess.run(["logits"], {"features": x, "day": d})[0]

* **TorchScript** (:func:`export_torchscript`): the scripted :class:`ExportedDecoder`, on the CPU;
  ``m = torch.jit.load(path); logits = m(x, day)``, with torch alone.
* **safetensors** (:func:`export_safetensors`): the full GRUDecoder state dict (all days), weights
  only, plus string metadata (``model_config``, ``n_days``, ``n_features`` as JSON); rebuild with
  ``GRUDecoder(ModelConfig(**json.loads(meta["model_config"])), n_days, n_features)`` and
  ``load_state_dict(safetensors.torch.load_file(path))``.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from brain2text import __version__
from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.config import ModelConfig
from brain2text.errors import ConfigError
from brain2text.model.gru import GRUDecoder
from brain2text.phonemes import BLANK, N_CLASSES, PHONEMES

SIDECAR_FORMAT = "brain2text-decoder-export"
BLANK_SYMBOL = "<blank>"
DEFAULT_OPSET = 17


def class_symbols() -> list[str]:
    """The 41 output classes in order: the CTC blank (0), then the 40 phoneme symbols."""
    symbols = list(PHONEMES)
    symbols.insert(BLANK, BLANK_SYMBOL)
    assert len(symbols) == N_CLASSES
    return symbols


def resolve_days(days_all: list[str], chosen: list[str] | None) -> list[int]:
    """Indices into ``days_all`` of the ``chosen`` days, in their order (None: all days)."""
    if chosen is None:
        return list(range(len(days_all)))
    if len(chosen) == 0:
        raise ConfigError(
            "chosen days: the list is empty; name at least one day, or none to export all of them"
        )
    position = {d: i for i, d in enumerate(days_all)}
    for day in chosen:
        if day not in position:
            known = ", ".join(days_all[:5]) + (", ..." if len(days_all) > 5 else "")
            raise ConfigError(
                f"chosen day {day!r} is not a day of this model ({len(days_all)} days: {known})"
            )
    if len(set(chosen)) != len(chosen):
        twice = next(d for d in chosen if chosen.count(d) > 1)
        raise ConfigError(f"chosen days: {twice!r} is named more than once")
    return [position[d] for d in chosen]


class ExportedDecoder(nn.Module):
    """A GRUDecoder cut down to some days, in eval mode (no dropout), for export.

    It shares the smoother, LayerNorm, GRU and read-out of ``model`` and holds copies of the
    chosen days' input layers: its day ``i`` is ``model``'s day ``day_indices[i]``. Patching is a
    gather (same values as ``unfold``) so the ONNX graph keeps T free; the initial GRU state is
    the learned ``h0`` or zeros, expanded over the batch.
    """

    if TYPE_CHECKING:  # a buffer; declared for the type checker only (TorchScript rejects it)
        h0: torch.Tensor

    def __init__(self, model: GRUDecoder, day_indices: list[int]) -> None:
        super().__init__()
        idx = torch.tensor(day_indices, dtype=torch.long, device=model.day_weights.device)
        self.smoother = model.smoother
        self.day_weights = nn.Parameter(model.day_weights.detach().index_select(0, idx).clone())
        self.day_biases = nn.Parameter(model.day_biases.detach().index_select(0, idx).clone())
        self.layer_norm = model.layer_norm
        self.gru = model.gru
        self.readout = model.readout
        directions = 2 if model.config.bidirectional else 1
        h0 = (
            model.h0.detach().clone()
            if model.h0 is not None
            else torch.zeros(
                model.config.n_layers * directions,
                1,
                model.config.n_units,
                device=model.day_weights.device,
            )
        )
        self.register_buffer("h0", h0)  # (n_layers * directions, 1, H)
        self.kernel_len: int = model.config.kernel_len
        self.stride_len: int = model.config.stride_len
        self.eval()

    def forward(self, features: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        """(B, T, C) float32 features, (B,) int64 day indices -> (B, T', 41) logits."""
        x = self.smoother(features)
        x = torch.bmm(x, torch.index_select(self.day_weights, 0, day))
        x = x + torch.index_select(self.day_biases, 0, day)
        x = self.layer_norm(nn.functional.softsign(x))
        k, s = self.kernel_len, self.stride_len
        n_out = (x.shape[1] - k) // s + 1
        starts = torch.arange(n_out, device=x.device) * s
        taps = (starts.unsqueeze(1) + torch.arange(k, device=x.device).unsqueeze(0)).reshape(-1)
        x = torch.index_select(x, 1, taps).reshape(x.shape[0], n_out, k, x.shape[2])
        x = x.transpose(2, 3).flatten(2)  # (B, T', C*K), channel-major like unfold
        h0 = self.h0.expand(-1, x.shape[0], -1).contiguous()
        x, _ = self.gru(x, h0)
        return self.readout(x)


def _cpu_copy(model: GRUDecoder, day_indices: list[int]) -> ExportedDecoder:
    """An ExportedDecoder on the CPU that shares nothing with ``model`` (which is not moved)."""
    return copy.deepcopy(ExportedDecoder(model, day_indices)).cpu().eval()


def is_causal(config: ModelConfig) -> bool:
    """Output frame t reads only bins up to its window's end (can decode as bins arrive)."""
    return not config.bidirectional and (
        config.causal_smoothing or config.gaussian_smooth_width == 0
    )


def sidecar(
    config_dict: dict[str, Any],
    days: list[str],
    chosen: list[str] | None,
    n_features: int,
    feature_names: list[str] | None = None,
    normalization: str | None = None,
) -> dict[str, Any]:
    """What a reader needs beside the weights. ``config_dict``: a run config dict (its ``model``
    section is read) or a model config dict; ``chosen`` None: all ``days``."""
    section = config_dict.get("model", config_dict) if isinstance(config_dict, dict) else {}
    try:
        model_config = ModelConfig.model_validate(section)
    except ValueError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"sidecar: not a model config ({reason})") from None
    if feature_names is not None and len(feature_names) != n_features:
        raise ConfigError(f"sidecar: {len(feature_names)} feature names for {n_features} features")
    picked = [days[i] for i in resolve_days(days, chosen)]
    return {
        "format": SIDECAR_FORMAT,
        "brain2text_version": __version__,
        "classes": class_symbols(),
        "blank": BLANK,
        "n_classes": N_CLASSES,
        "n_features": n_features,
        "feature_names": feature_names,
        "normalization": normalization,
        "days": picked,
        "input_shapes": {"features": ["B", "T", n_features], "day": ["B"]},
        "kernel_len": model_config.kernel_len,
        "stride_len": model_config.stride_len,
        "output_length": "(T - kernel_len) // stride_len + 1",
        "causal": is_causal(model_config),
        "model_config": model_config.model_dump(mode="json"),
        "run_config": config_dict if "model" in config_dict else None,
    }


def write_sidecar(
    out: Path, info: dict[str, Any], export_format: str, opset: int | None = None
) -> Path:
    """Write ``info`` plus the format, opset and torch version to ``<out>.json``."""
    path = Path(out).with_name(Path(out).name + ".json")
    full = {
        **info,
        "export_format": export_format,
        "opset": opset,
        "torch_version": torch.__version__,
    }
    atomic_write_text(path, json.dumps(full, indent=2) + "\n")
    return path


def _prepare(
    model: GRUDecoder, days_all: list[str], chosen: list[str] | None, info: dict[str, Any] | None
) -> tuple[ExportedDecoder, dict[str, Any]]:
    if len(days_all) != model.n_days:
        raise ConfigError(f"export: {len(days_all)} day names for a model of {model.n_days} days")
    indices = resolve_days(days_all, chosen)
    if info is None:
        info = sidecar(model.config.model_dump(), days_all, chosen, model.n_features)
    elif info.get("days") != [days_all[i] for i in indices]:
        raise ConfigError("export: the sidecar's days are not the chosen days")
    return _cpu_copy(model, indices), info


def export_torchscript(
    model: GRUDecoder,
    days_all: list[str],
    chosen: list[str] | None,
    out: Path,
    *,
    info: dict[str, Any] | None = None,
) -> Path:
    """Script the chosen days' decoder to ``out`` (``torch.jit.load``) and its sidecar."""
    wrapper, info = _prepare(model, days_all, chosen, info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, works
        scripted = torch.jit.script(wrapper)
        atomic_write_bytes(Path(out), lambda f: torch.jit.save(scripted, f))
    write_sidecar(Path(out), info, "torchscript")
    return Path(out)


def onnx_bytes(
    module: nn.Module, example: tuple[torch.Tensor, ...], opset: int, **names: Any
) -> bytes:
    """``module`` exported by torch's TorchScript-based ONNX exporter (``names``: its input,
    output and dynamic axis names), as the bytes of the file (written to a temporary folder,
    then read back: the caller writes them atomically where they go)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(module, example, path, dynamo=False, opset_version=opset, **names)
        return path.read_bytes()


def export_onnx(
    model: GRUDecoder,
    days_all: list[str],
    chosen: list[str] | None,
    out: Path,
    opset: int = DEFAULT_OPSET,
    *,
    info: dict[str, Any] | None = None,
) -> Path:
    """The chosen days' decoder as ONNX (TorchScript-based exporter), B and T dynamic."""
    wrapper, info = _prepare(model, days_all, chosen, info)
    c = model.config
    t_example = c.kernel_len + 3 * c.stride_len + 1
    example = (torch.zeros(2, t_example, model.n_features), torch.zeros(2, dtype=torch.long))
    data = onnx_bytes(
        wrapper,
        example,
        opset,
        input_names=["features", "day"],
        output_names=["logits"],
        dynamic_axes={
            "features": {0: "batch", 1: "time"},
            "day": {0: "batch"},
            "logits": {0: "batch", 1: "frames"},
        },
    )
    atomic_write_bytes(Path(out), lambda f: f.write(data))
    write_sidecar(Path(out), info, "onnx", opset)
    return Path(out)


def export_safetensors(
    model: GRUDecoder, out: Path, metadata: dict[str, str], *, info: dict[str, Any] | None = None
) -> Path:
    """The full state dict (every day) as safetensors with string ``metadata`` and a sidecar
    (``info``, or one built from the model; days from ``metadata["days"]``, a JSON list)."""
    from safetensors.torch import save

    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ConfigError(f"safetensors metadata: {bad[0]!r} is not a string key and value")
    meta = {
        "format": "brain2text-gru-state-dict",
        "n_days": str(model.n_days),
        "n_features": str(model.n_features),
        "model_config": json.dumps(model.config.model_dump(mode="json")),
        **metadata,
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save(tensors, metadata=meta)
    if info is None:
        days = (
            json.loads(metadata["days"])
            if "days" in metadata
            else [f"day{i}" for i in range(model.n_days)]
        )
        info = sidecar(model.config.model_dump(), days, None, model.n_features)
    atomic_write_bytes(Path(out), lambda f: f.write(data))
    write_sidecar(Path(out), info, "safetensors")
    return Path(out)
