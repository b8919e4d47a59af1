"""Export a trained encoder (GRU or Transformer) for machines without brain2text.

Three formats, each written atomically (a temporary file in the same folder, then
``os.replace``) with a JSON sidecar ``<out>.json`` beside it (:func:`sidecar`): the phoneme
symbols in class order (CTC blank at 0), the feature count, names and normalisation, the days in
index order, ``kernel_len``/``stride_len`` (``T' = (T - kernel_len) // stride_len + 1``), whether
the model is causal, what the 41 outputs are (logits, or phoneme log-probabilities for diphone
targets: ``log_softmax`` of either gives the log-probabilities), the model config, and the
format, opset and torch version.

* **ONNX** (:func:`export_onnx`): the graph of the cut-down module
  (:mod:`brain2text.model.exported`) with its weights; inputs ``features`` float32 (B, T, C)
  and, with per-day input layers, ``day`` int64 (B,) (an index into the sidecar's ``days``;
  ``day_layers: shared | none`` read no day, and their graph has no ``day`` input: the
  sidecar's ``input_shapes`` lists the inputs), output ``logits`` float32 (B, T', 41); B and T
  are free. Load with onnxruntime::

      sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
      logits = sess.run(["logits"], {"features": x, "day": d})[0]

* **TorchScript** (:func:`export_torchscript`): the scripted module, on the CPU;
  ``m = torch.jit.load(path); logits = m(x, day)`` (``day`` always given, read only with
  per-day layers), with torch alone.
* **safetensors** (:func:`export_safetensors`): the full state dict (all days), weights only,
  plus string metadata (``model_config``, ``n_days``, ``n_features``, ``mask_token`` as JSON);
  rebuild with the encoder of ``model_config["kind"]``, e.g.
  ``GRUDecoder(ModelConfig(**json.loads(meta["model_config"])), n_days, n_features,
  mask_token=json.loads(meta["mask_token"]))``, and
  ``load_state_dict(safetensors.torch.load_file(path))``.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brain2text import __version__
from brain2text.atomic import atomic_write_bytes, atomic_write_text
from brain2text.config import ModelConfig
from brain2text.errors import ConfigError
from brain2text.model.exported import ExportedDecoder, ExportedInputs, ExportedTransformer
from brain2text.model.factory import SpeechModel
from brain2text.model.transformer import TransformerDecoder
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


def exported_module(model: SpeechModel, day_indices: list[int]) -> ExportedInputs:
    """The module export writes for ``model``'s kind, cut down to ``day_indices``."""
    if isinstance(model, TransformerDecoder):
        return ExportedTransformer(model, day_indices)
    return ExportedDecoder(model, day_indices)


def _cpu_copy(model: SpeechModel, day_indices: list[int]) -> ExportedInputs:
    """The exported module on the CPU, sharing nothing with ``model`` (which is not moved)."""
    return copy.deepcopy(exported_module(model, day_indices)).cpu().eval()


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
        "input_shapes": {"features": ["B", "T", n_features]}
        | ({"day": ["B"]} if model_config.day_layers == "per_day" else {}),
        "day_layers": model_config.day_layers,
        "output": "phoneme log-probabilities (diphone targets, marginalised)"
        if model_config.targets == "diphone"
        else "phoneme logits",
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
    model: SpeechModel, days_all: list[str], chosen: list[str] | None, info: dict[str, Any] | None
) -> tuple[ExportedInputs, dict[str, Any]]:
    if len(days_all) != model.n_days:
        raise ConfigError(f"export: {len(days_all)} day names for a model of {model.n_days} days")
    indices = resolve_days(days_all, chosen)
    if info is None:
        info = sidecar(model.config.model_dump(), days_all, chosen, model.n_features)
    elif info.get("days") != [days_all[i] for i in indices]:
        raise ConfigError("export: the sidecar's days are not the chosen days")
    return _cpu_copy(model, indices), info


def export_torchscript(
    model: SpeechModel,
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
    model: SpeechModel,
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
    model: SpeechModel, out: Path, metadata: dict[str, str], *, info: dict[str, Any] | None = None
) -> Path:
    """The full state dict (every day) as safetensors with string ``metadata`` and a sidecar
    (``info``, or one built from the model; days from ``metadata["days"]``, a JSON list)."""
    from safetensors.torch import save

    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ConfigError(f"safetensors metadata: {bad[0]!r} is not a string key and value")
    meta = {
        "format": f"brain2text-{model.config.kind}-state-dict",
        "n_days": str(model.n_days),
        "mask_token": json.dumps(model.mask_token is not None),
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
