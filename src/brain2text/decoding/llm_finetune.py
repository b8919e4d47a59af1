"""Adapting a causal LM to the domain's sentences with LoRA: ``brain2text lm finetune``.

The result is a merged Hugging Face folder (safetensors weights, tokenizer, ``finetune.json``)
that every ``--llm`` option takes.

Decisions:

- An example is a prompt and a target (a corpus sentence has the prompt ""). The model reads
  the start token, the prompt's tokens and the target's, each part tokenized on its own as the
  sentence scorer and the generator see them; the loss is the mean negative log-likelihood of
  the target's tokens only (the start token and the prompt carry the label -100). ``end``'s
  tokens follow the target when given: the end token for a generator, which must learn to
  stop; for sentences the scorer's ``--llm-end`` (none by default, as the scorer's).
- Validation: ``val_examples``, else the examples whose target's hash falls in the held-out
  fraction, so that no validation sentence is ever trained on, whatever its prompt.
- The learning rate rises linearly over ``warmup_steps`` and then stays: the schedule depends
  on the step only, so a run stopped at step k (or ended by ``max_steps`` k) and resumed to n
  ends with the weights of a straight n-step run. The order of the examples in epoch e is a
  permutation drawn from (seed, e).
- Every ``save_every`` steps and at the end, the adapter, optimizer, scheduler, step and RNG
  state go into ``OUT.partial/`` beside the output (kept after the end, so that a run can be
  extended); ``resume`` continues from there if the base, the examples and the options agree.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brain2text.atomic import OutputKind, check_output_folder, staged_folder
from brain2text.decoding.llm_examples import (
    TextExample,
    batch_nll,
    collate,
    encode_example,
    examples_sha256,
    perplexity,
    split_examples,
)
from brain2text.decoding.llm_resume import (
    RESUME_FORMAT,
    check_compatible,
    load_state,
    read_resume,
    resume_dir_of,
    save_state,
)
from brain2text.errors import ConfigError, DataError

FORMAT, INFO_FILE = "brain2text-finetuned-llm/1", "finetune.json"
LLM_FOLDER = OutputKind(INFO_FILE, FORMAT, "a fine-tuned LLM folder")
ALL_LINEAR = "all-linear"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class FinetuneOptions:
    rank: int = 8
    lora_alpha: int = 16
    dropout: float = 0.05
    # Llama-style attention projections; ("all-linear",) adapts every linear layer but the head
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    epochs: int = 3
    max_steps: int | None = None  # when given, the number of steps (epochs is then unused)
    batch_size: int = 16
    val_fraction: float = 0.1
    seed: int = 0
    save_every: int = 200
    end: str | None = None  # "eos" or a text such as "."; None: nothing after the target

    def __post_init__(self) -> None:
        def whole(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{_flag(name)}: must be an integer >= {low}, got {value!r}")

        def number(name: str, low: float, high: float = math.inf, *, open_low: bool) -> None:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not (value > low if open_low else value >= low) or not value <= high:
                span = f"{'>' if open_low else '>='} {low:g}" + (
                    f" and <= {high:g}" if high < math.inf else ""
                )
                raise ConfigError(f"{_flag(name)}: must be a number {span}, got {value!r}")

        for name, low in (("rank", 1), ("lora_alpha", 1), ("warmup_steps", 0), ("epochs", 1)):
            whole(name, low)
        whole("batch_size", 1)
        whole("seed", 0)
        whole("save_every", 1)
        if self.max_steps is not None:
            whole("max_steps", 1)
        number("lr", 0.0, open_low=True)
        number("dropout", 0.0, 0.99, open_low=False)
        number("weight_decay", 0.0, open_low=False)
        number("val_fraction", 0.0, 0.5, open_low=False)
        if not self.target_modules or not all(
            isinstance(m, str) and m for m in self.target_modules
        ):
            raise ConfigError(
                f"--target-modules: layer names such as q_proj v_proj (or {ALL_LINEAR}), "
                f"got {self.target_modules!r}"
            )


@dataclass(frozen=True)
class FinetuneResult:
    out_dir: Path
    steps: int
    val_perplexity_before: float | None
    val_perplexity_after: float | None
    seconds: float
    n_train: int
    n_val: int
    resume_dir: Path


# --- the run -----------------------------------------------------------------------------


def _n_steps(options: FinetuneOptions, n_train: int) -> int:
    if options.max_steps is not None:
        return options.max_steps
    return options.epochs * math.ceil(n_train / options.batch_size)


def _batch_rows(step: int, n_train: int, options: FinetuneOptions, cache: dict) -> list[int]:
    per_epoch = math.ceil(n_train / options.batch_size)
    epoch, i = divmod(step, per_epoch)
    if epoch not in cache:
        cache.clear()
        cache[epoch] = np.random.default_rng([options.seed, epoch]).permutation(n_train)
    return cache[epoch][i * options.batch_size : (i + 1) * options.batch_size].tolist()


def check_destination(out_dir: Path, *, resume: bool, overwrite: bool) -> dict:
    """Refuse an output folder that is not ours or not empty (unless ``overwrite``; ``resume``
    replaces the output of the run it continues) and a saved run neither resumed nor
    overwritten. Returns the saved run's resume.json when ``resume`` (else {})."""
    out_dir = Path(os.path.normpath(Path(out_dir).absolute()))
    resume_dir = resume_dir_of(out_dir)
    check_output_folder(out_dir, LLM_FOLDER, overwrite=overwrite or resume)
    if resume:
        return read_resume(resume_dir)
    if resume_dir.exists() and not overwrite:
        raise ConfigError(
            f"{resume_dir}: an earlier fine-tuning into {out_dir.name} is saved there; pass "
            "--resume to continue it or --overwrite to start again"
        )
    return {}


def _versions() -> dict:
    import peft
    import torch
    import transformers

    from brain2text import __version__

    return {
        "brain2text": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": sys.version.split()[0],
    }


def finetune_llm(
    base: str | Path,
    examples: Sequence[TextExample],
    out_dir: Path,
    *,
    val_examples: Sequence[TextExample] | None = None,
    options: FinetuneOptions | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    dtype: str | None = None,
    data: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> FinetuneResult:
    """LoRA-adapt ``base`` to ``examples`` and write the merged model into ``out_dir``.

    ``data`` (e.g. the task and the corpus's path and sha256) is recorded in finetune.json."""
    from brain2text.decoding.llm import load_causal_lm, require_llm, start_token_id

    options = options or FinetuneOptions()
    tick = time.perf_counter()
    out_dir = Path(os.path.normpath(Path(out_dir).absolute()))
    resume_dir = resume_dir_of(out_dir)
    saved = check_destination(out_dir, resume=resume, overwrite=overwrite)
    if val_examples is None:
        train, val = split_examples(examples, options.val_fraction)
    else:
        train, val = list(examples), list(val_examples)
    if not train:
        raise DataError("no training example (the corpus is empty or all of it was held out)")
    require_llm()
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    lm = load_causal_lm(base, device=device, dtype=dtype)
    tokenizer, model = lm.tokenizer, lm.model
    pad_id = tokenizer.pad_token_id
    pad_id = int(pad_id if pad_id is not None else start_token_id(tokenizer))
    encoded_train = [encode_example(tokenizer, e, end=options.end) for e in train]
    encoded_val = [encode_example(tokenizer, e, end=options.end) for e in val]
    info = {
        "format": RESUME_FORMAT,
        "base": {"name": str(lm.name), "source": str(lm.source), "sha256": lm.sha256},
        "examples_sha256": examples_sha256([*train, TextExample("\0", "\0"), *val]),
        "options": json.loads(json.dumps(dataclasses.asdict(options))),  # as saved
    }
    if resume:
        check_compatible(saved, info)
        before = saved.get("val_perplexity_before")
        tick -= float(saved.get("seconds", 0.0))  # the time of the runs it continues
    else:
        before = perplexity(model, encoded_val, pad_id, options.batch_size, lm.device)
        before = None if math.isnan(before) else before
    info["val_perplexity_before"] = before

    torch.manual_seed(options.seed)
    lora = LoraConfig(
        r=options.rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.dropout,
        target_modules=(
            ALL_LINEAR if options.target_modules == (ALL_LINEAR,) else list(options.target_modules)
        ),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            peft_model = get_peft_model(model, lora)
    except ValueError:
        raise ConfigError(
            f"--target-modules {' '.join(options.target_modules)}: not layers of {lm.name} "
            f"(Llama-style models have q_proj v_proj; {ALL_LINEAR} takes every linear layer)"
        ) from None
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.lr, weight_decay=options.weight_decay)
    warmup = options.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
    )
    first = load_state(resume_dir, peft_model, optimizer, scheduler, lm.device) if resume else 0
    n_steps = _n_steps(options, len(train))
    if first > n_steps:
        raise ConfigError(
            f"--resume: the saved fine-tuning is at step {first}, past the {n_steps} steps "
            "asked; raise --max-steps or --epochs"
        )
    peft_model.train()
    order: dict = {}
    with tqdm(
        total=n_steps, initial=first, desc="finetune", unit="step", disable=not progress
    ) as bar:
        for step in range(first, n_steps):
            rows = _batch_rows(step, len(train), options, order)
            nll, n = batch_nll(
                peft_model, collate([encoded_train[r] for r in rows], pad_id, lm.device)
            )
            loss = nll / max(n, 1)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if (step + 1) % options.save_every == 0 and step + 1 < n_steps:
                info["seconds"] = round(time.perf_counter() - tick, 3)
                save_state(resume_dir, peft_model, optimizer, scheduler, step + 1, info)
    info["seconds"] = round(time.perf_counter() - tick, 3)
    save_state(resume_dir, peft_model, optimizer, scheduler, n_steps, info)

    merged: Any = peft_model.merge_and_unload()
    merged.eval()
    after = perplexity(merged, encoded_val, pad_id, options.batch_size, lm.device)
    after_value = None if math.isnan(after) else after
    seconds = time.perf_counter() - tick
    record = {
        "format": FORMAT,
        "task": (data or {}).get("task"),
        "base": info["base"],
        "data": dict(data or {}),
        "options": info["options"],
        "n_train": len(train),
        "n_val": len(val),
        "val_perplexity_before": before,
        "val_perplexity_after": after_value,
        "steps": n_steps,
        "seconds": round(seconds, 3),
        "device": str(lm.device),
        "dtype": str(lm.dtype).removeprefix("torch."),
        "versions": _versions(),
    }
    with staged_folder(out_dir, LLM_FOLDER, overwrite=overwrite or resume) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / INFO_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return FinetuneResult(
        out_dir, n_steps, before, after_value, seconds, len(train), len(val), resume_dir
    )
