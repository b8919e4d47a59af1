"""The fine-tuning's examples and loss: a prompt and a target, split by the target's hash,
tokenized as the sentence scorer and the generator see them, and the negative log-likelihood of
the target's tokens (:mod:`brain2text.decoding.llm_finetune` runs it)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brain2text.decoding.lm import drop_sentences, read_corpus

IGNORE = -100  # the label of tokens that carry no loss


@dataclass(frozen=True)
class TextExample:
    """The model reads ``prompt`` and learns to continue it with ``target``."""

    prompt: str
    target: str


# --- the examples ------------------------------------------------------------------------


def corpus_examples(
    path: Path, exclude: Sequence[str] | None = None, excluded_from: dict | None = None
) -> tuple[list[TextExample], dict]:
    """One example a cleaned corpus line (the words the decoder writes, lower case), but the
    lines that are one of ``exclude``'s sentences (e.g. the validation split's: ``lm tune``
    must not choose weights on sentences the LLM has learnt); and the corpus's record for
    finetune.json (path, sha256, what was excluded)."""
    sentences, data = read_corpus(Path(path))
    record: dict = {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(data).hexdigest()}
    if exclude is not None:
        sentences, record["excluded"] = drop_sentences(path, sentences, exclude, excluded_from)
    return [TextExample("", " ".join(words)) for words in sentences], record


def _hash_of(target: str) -> float:
    """Where ``target`` (spaces normalized) falls in [0, 1)."""
    digest = hashlib.sha256(" ".join(target.split()).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_examples(
    examples: Sequence[TextExample], fraction: float
) -> tuple[list[TextExample], list[TextExample]]:
    """(train, val): an example is held out when its target's hash falls below ``fraction``, so
    a sentence is on one side only. With two sentences or more and ``fraction`` > 0, each side
    gets at least one."""
    targets = sorted({e.target for e in examples}, key=_hash_of)
    if fraction <= 0 or len(targets) < 2:
        return list(examples), []
    n_val = min(max(sum(_hash_of(t) < fraction for t in targets), 1), len(targets) - 1)
    chosen = set(targets[:n_val])
    return [e for e in examples if e.target not in chosen], [
        e for e in examples if e.target in chosen
    ]


def examples_sha256(examples: Sequence[TextExample]) -> str:
    return hashlib.sha256(json.dumps([[e.prompt, e.target] for e in examples]).encode()).hexdigest()


# --- tokens and the loss -----------------------------------------------------------------


def encode_example(
    tokenizer: Any, example: TextExample, *, end: str | None = None
) -> tuple[list[int], list[int]]:
    """(input ids, labels): start + prompt + target [+ end]; labels -100 but on the target.
    ``end``: as the sentence scorer's (``"eos"``: the end token; a text such as ``"."``)."""

    from brain2text.decoding.llm import end_token_ids, start_token_id

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    prompt, target = ids(example.prompt), ids(example.target) + end_token_ids(tokenizer, end)
    start = [start_token_id(tokenizer)]
    return start + prompt + target, [IGNORE] * (1 + len(prompt)) + target


def collate(encoded: Sequence[tuple[list[int], list[int]]], pad_id: int, device: Any) -> dict:
    """Right-padded input ids, attention mask and labels (padding carries no loss)."""
    import torch

    width = max(len(ids) for ids, _ in encoded)
    rows = len(encoded)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    labels = torch.full((rows, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for i, (ids, lab) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(ids)] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def batch_nll(model: Any, batch: Mapping[str, Any]) -> tuple[Any, int]:
    """(summed negative log-likelihood of the labelled tokens, their number)."""
    import torch.nn.functional as F

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["labels"][:, 1:]
    nll = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return nll, int((targets != IGNORE).sum())


def perplexity(model: Any, encoded: Sequence, pad_id: int, batch_size: int, device: Any) -> float:
    """exp(mean NLL per target token) of ``encoded``, in eval mode."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(encoded), batch_size):
            nll, n = batch_nll(model, collate(encoded[i : i + batch_size], pad_id, device))
            total, count = total + float(nll), count + n
    model.train(was_training)
    return math.exp(total / count) if count else math.nan
