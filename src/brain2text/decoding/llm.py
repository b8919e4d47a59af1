"""Sentence scores from a local causal LM: the natural-log probability of a sentence's tokens
given the start token (no end-of-sentence term, no length penalty), as n-best rescoring uses.

The model is a Hugging Face folder, a ``.gguf`` file (dequantised once, then read from a
safetensors cache keyed by its hash) or a packaged model's name (:data:`PACKAGED_MODELS`).
Nothing is downloaded: every load is ``local_files_only`` with the hub's offline switches on.
``transformers`` (the ``llm`` extra) is imported only inside functions, after
:func:`require_llm`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brain2text.decoding.llm_cache import (
    PACKAGED_MODELS,
    cached_folder,
    dequantise_gguf,
    file_sha256,
    first_line,
    resolve_model,
    write_cache,
)
from brain2text.decoding.llm_tree import prefix_tree, tree_log_probs
from brain2text.distributed import pick_device
from brain2text.errors import ConfigError, DataError

__all__ = [
    "MISSING_LLM",
    "PACKAGED_MODELS",
    "as_scorer",
    "CausalLM",
    "END_MARK",
    "SentenceScorer",
    "describe",
    "end_token_ids",
    "load_causal_lm",
    "load_scorer",
    "require_llm",
    "resolve_dtype",
    "start_token_id",
]

MISSING_LLM = (
    "the LLM options need transformers, gguf and accelerate, which are not installed: "
    "pip install 'brain2text[llm]' (or make install)"
)
_LLM_MODULES = ("transformers", "gguf", "accelerate")
DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}
END_MARK = " + end "  # a scorer with an end is named "<model> + end '<end>'"
SCORE_CACHE_SIZE = 200_000  # sentences whose score a scorer keeps


def require_llm() -> None:
    """Raise the one-line :class:`ConfigError` :data:`MISSING_LLM` unless the ``llm`` extra
    is installed; switch the hub off and quieten transformers before it is first imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in _LLM_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(MISSING_LLM)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """``None``: bf16 on a CUDA device that supports it, else fp16 there; fp32 on the CPU."""
    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"--llm-dtype {dtype}: unknown; choose fp32, bf16 or fp16")
    return DTYPES[dtype]


def _resolve_device(device: str) -> torch.device:
    try:
        return pick_device(device)
    except ConfigError:
        raise ConfigError(f"--llm-device {device}: CUDA is not available here") from None
    except RuntimeError:
        raise ConfigError(f"--llm-device {device}: unknown device; use auto, cpu or cuda") from None


@dataclass(frozen=True)
class CausalLM:
    """A loaded causal LM: ``name`` as given, ``source`` the resolved file or folder,
    ``sha256`` that of the GGUF file (None for a folder)."""

    model: Any
    tokenizer: Any
    name: str
    source: Path
    sha256: str | None
    device: torch.device
    dtype: torch.dtype


def _load_folder(folder: Path, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{folder}: has no usable tokenizer ({first_line(exc)})") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise DataError(f"{folder}: cannot load the model ({first_line(exc)})") from None
    return model, tokenizer


def load_causal_lm(
    spec: str | Path,
    *,
    device: str = "auto",
    dtype: str | None = None,
    cache_dir: Path | None = None,
) -> CausalLM:
    """Load ``spec`` (a Hugging Face folder, a ``.gguf`` file or a name in
    :data:`PACKAGED_MODELS`) in evaluation mode on ``device``. A GGUF file's first load
    writes its dequantised copy into the cache (``cache_dir``, else ``$BRAIN2TEXT_CACHE/llm``,
    else ``~/.cache/brain2text/llm``); later loads read it."""
    require_llm()
    torch_device = _resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    source = resolve_model(spec)
    sha256 = None
    if source.kind == "folder":
        model, tokenizer = _load_folder(source.path, torch_dtype)
    else:
        sha256 = file_sha256(source.path)
        folder = cached_folder(sha256, cache_dir)
        if folder is not None:
            model, tokenizer = _load_folder(folder, torch_dtype)
        else:
            model, tokenizer = dequantise_gguf(source.path)
            write_cache(model, tokenizer, source.path, sha256, cache_dir)
            model = model.to(torch_dtype)
    model = model.to(torch_device).eval()
    return CausalLM(
        model=model,
        tokenizer=tokenizer,
        name=str(spec),
        source=source.path,
        sha256=sha256,
        device=torch_device,
        dtype=torch_dtype,
    )


def start_token_id(tokenizer: Any) -> int:
    """The token every sentence is conditioned on: the tokenizer's BOS, else its EOS (GPT-2
    style tokenizers have only that)."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise ConfigError(
        "the LLM's tokenizer has no start (BOS) or end (EOS) token to condition sentences on"
    )


def end_token_ids(tokenizer: Any, end: str | None) -> list[int]:
    """The tokens ``--llm-end`` appends to every sentence: none, the tokenizer's end token
    (``"eos"``) or those of a text such as ``"."``."""
    if end is None:
        return []
    if end == "eos":
        if tokenizer.eos_token_id is None:
            raise ConfigError("--llm-end eos: the LLM's tokenizer has no end (EOS) token")
        return [int(tokenizer.eos_token_id)]
    ids = [int(i) for i in tokenizer(end, add_special_tokens=False)["input_ids"]] if end else []
    if not ids:
        raise ConfigError(f"--llm-end {end!r}: the text has no tokens; give e.g. '.' or eos")
    return ids


def describe(lm: CausalLM) -> dict[str, Any]:
    """What a summary records of the LLM used."""
    return {
        "name": lm.name,
        "source": str(lm.source),
        "sha256": lm.sha256,
        "n_parameters": int(sum(p.numel() for p in lm.model.parameters())),
        "device": str(lm.device),
        "dtype": str(lm.dtype).removeprefix("torch."),
    }


def token_log_probs(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Per row, the float64 sum over positions 1.. of log p(ids[t] | ids[:t]) where ``mask``
    is 1 (``logits[:, t]`` predicts ``ids[:, t + 1]``)."""
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1).double()
    return (picked * mask[:, 1:].double()).sum(dim=1).cpu().numpy()


class SentenceScorer:
    """Natural-log sentence scores from ``lm``, ``batch_size`` sentences a forward pass; a
    sentence's score does not depend on its batch.

    With ``share_prefixes`` (the default) a batch is the prefix tree of sentences taken in
    token order, so tokens that several sentences start with are computed once (an n-best
    list's sentences mostly differ late); it is kept only if a probe shows the model honours
    the tree's attention mask. Otherwise a batch is sentences of similar token counts,
    right-padded.

    ``end`` (None: the baselines' score, no end term): text whose tokens follow every sentence
    (``"."``, or ``"eos"`` for the tokenizer's end token), so a score is that of the whole
    sentence ending there and an unfinished one ("i got a very bad feeling about a") pays for
    its missing end. Each sentence's tree branch gains only those tokens."""

    def __init__(
        self,
        lm: CausalLM,
        batch_size: int = 32,
        share_prefixes: bool = True,
        end: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"--llm-batch-size {batch_size}: must be at least 1")
        self.lm = lm
        self.batch_size = int(batch_size)
        self.end = end
        self.end_ids = end_token_ids(lm.tokenizer, end)
        # the name rescoring options are tuned under: a scorer with an end scores otherwise
        self.name = lm.name if end is None else f"{lm.name}{END_MARK}{end!r}"
        self.start_id = start_token_id(lm.tokenizer)
        pad = lm.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.start_id
        self._scores: dict[str, float] = {}
        self.share_prefixes = bool(share_prefixes) and self._tree_agrees()

    def _tree_agrees(self) -> bool:
        """Whether packed prefix trees give this model's padded-batch scores (a model that
        ignores a 4-D attention mask would not)."""
        vocab = int(getattr(self.lm.model.config, "vocab_size", 0) or len(self.lm.tokenizer))
        a, b, c, d = (vocab * k // 11 for k in (3, 5, 7, 9))
        rows = [[self.start_id, a, b, c], [self.start_id, a, d], [self.start_id, c, b]]
        try:
            tree = tree_log_probs(self.lm.model, prefix_tree(rows), self.lm.device, self.lm.dtype)
        except (RuntimeError, ValueError, TypeError, IndexError):
            return False
        plain = self._score_batch(rows)
        tolerance = 1e-3 if self.lm.dtype == torch.float32 else 0.25
        return bool(np.all(np.abs(tree - plain) <= tolerance))

    def encode(self, sentence: str) -> list[int]:
        """The start token, the sentence's tokens (no special tokens of the tokenizer), then
        the end's."""
        ids = self.lm.tokenizer(sentence, add_special_tokens=False)["input_ids"] if sentence else []
        return [self.start_id, *(int(i) for i in ids), *self.end_ids]

    def score(self, sentences: Sequence[str]) -> np.ndarray:
        """float64 log-probabilities of ``sentences`` in their order; "" scores 0.0 (with an
        end: that of the end alone)."""
        todo = [s for s in dict.fromkeys(sentences) if s not in self._scores]
        encoded = [(s, self.encode(s)) for s in todo]
        for sentence, ids in encoded:
            if len(ids) == 1:  # nothing to score after the start token
                self._scores[sentence] = 0.0
        pending = [e for e in encoded if len(e[1]) > 1]
        # neighbours in token order share prefixes; in length order they pad little
        pending.sort(key=(lambda e: e[1]) if self.share_prefixes else (lambda e: len(e[1])))
        for first in range(0, len(pending), self.batch_size):
            batch = pending[first : first + self.batch_size]
            rows = [ids for _, ids in batch]
            if self.share_prefixes:
                tree = prefix_tree(rows)
                values = tree_log_probs(self.lm.model, tree, self.lm.device, self.lm.dtype)
            else:
                values = self._score_batch(rows)
            for (sentence, _), value in zip(batch, values, strict=True):
                self._scores[sentence] = float(value)
        scores = np.array([self._scores[s] for s in sentences], dtype=np.float64)
        if len(self._scores) > SCORE_CACHE_SIZE:
            self._scores.clear()
        return scores

    def _score_batch(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[k, : len(row)] = 1
        ids, mask = ids.to(self.lm.device), mask.to(self.lm.device)
        with torch.inference_mode():
            logits = self.lm.model(input_ids=ids, attention_mask=mask).logits
        return token_log_probs(logits, ids, mask)


def load_scorer(
    spec: str | Path,
    *,
    device: str = "auto",
    dtype: str | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    share_prefixes: bool = True,
    end: str | None = None,
) -> SentenceScorer:
    """:func:`load_causal_lm` then a :class:`SentenceScorer` over it."""
    lm = load_causal_lm(spec, device=device, dtype=dtype, cache_dir=cache_dir)
    return SentenceScorer(lm, batch_size=batch_size, share_prefixes=share_prefixes, end=end)


def as_scorer(
    llm: SentenceScorer | str | Path | None,
    *,
    device: str = "auto",
    dtype: str | None = None,
    batch_size: int = 32,
    end: str | None = None,
) -> SentenceScorer | None:
    """None, the scorer given, or :func:`load_scorer` of a model spec (a folder, a ``.gguf``
    file, a packaged name) with ``end`` (:class:`SentenceScorer`)."""
    if llm is None or isinstance(llm, SentenceScorer):
        return llm
    return load_scorer(llm, device=device, dtype=dtype, batch_size=batch_size, end=end)
