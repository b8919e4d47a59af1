"""The saved state of an unfinished LoRA fine-tuning, ``OUT.partial/`` beside its output:
the adapter, the optimizer and scheduler, the step and the RNG states, and ``resume.json`` (the
base, the examples' hash, the options) that a resumed run must agree with."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from brain2text.atomic import OutputKind, staged_folder
from brain2text.errors import ConfigError, DataError

RESUME_FORMAT, RESUME_FILE, STATE_FILE = "brain2text-finetune-resume/1", "resume.json", "state.pt"
ADAPTER_DIR = "adapter"
RESUME_FOLDER = OutputKind(RESUME_FILE, RESUME_FORMAT, "a fine-tuning resume folder")
# what may change between a run and its resumption: how long it goes on, how often it saves
EXTENDABLE = ("epochs", "max_steps", "save_every")


def resume_dir_of(out_dir: Path) -> Path:
    """``OUT.partial`` beside ``OUT``."""
    out_dir = Path(os.path.normpath(Path(out_dir).absolute()))
    return out_dir.with_name(out_dir.name + ".partial")


def check_compatible(saved: dict, current: dict) -> None:
    """A resumed run must have the saved run's base, examples and options (but its length)."""
    for key in ("base", "examples_sha256"):
        if saved.get(key) != current[key]:
            what = "base LLM" if key == "base" else "examples (corpus or task)"
            raise ConfigError(
                f"--resume: the interrupted fine-tuning used another {what}; run it with "
                "the same --llm and data, or start again with --overwrite"
            )
    for name, value in current["options"].items():
        if name not in EXTENDABLE and saved["options"].get(name) != value:
            raise ConfigError(
                f"--resume: option {name} was {saved['options'].get(name)!r}, now {value!r}; "
                "give the same value or start again with --overwrite"
            )


def save_state(
    resume_dir: Path, peft_model: Any, optimizer: Any, scheduler: Any, step: int, info: dict
) -> None:
    """Replace ``resume_dir`` with the state after ``step`` steps (written staged)."""
    import torch

    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with staged_folder(resume_dir, RESUME_FOLDER, overwrite=True) as tmp:
        peft_model.save_pretrained(tmp / ADAPTER_DIR)
        torch.save(state, tmp / STATE_FILE)
        (tmp / RESUME_FILE).write_text(json.dumps({**info, "step": step}, indent=1) + "\n")


def load_state(
    resume_dir: Path, peft_model: Any, optimizer: Any, scheduler: Any, device: Any
) -> int:
    """Put the saved adapter, optimizer, scheduler and RNG states back; returns the step."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(resume_dir / ADAPTER_DIR / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(peft_model, weights)
    if getattr(result, "unexpected_keys", None):
        raise DataError(f"{resume_dir}: the saved adapter does not fit the model; use --overwrite")
    state = torch.load(resume_dir / STATE_FILE, map_location=device, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"].cpu())
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    return int(state["step"])


def read_resume(resume_dir: Path) -> dict:
    """The saved run's resume.json (a one-line error when there is none)."""
    try:
        info = json.loads((resume_dir / RESUME_FILE).read_text(encoding="utf-8"))
        if info.get("format") != RESUME_FORMAT:
            raise ValueError
        return info
    except (OSError, ValueError):
        raise ConfigError(
            f"--resume: {resume_dir} holds no interrupted fine-tuning; run without --resume"
        ) from None
