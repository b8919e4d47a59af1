"""The state a resumed run needs beyond its weights, optimizer and schedule: GradScaler, EMA,
instability watch, best summary, skipped-step counters and every RNG (the augmentation
generator, torch's CPU and CUDA generators, numpy's and python's), stored in ``last.pt`` as
tensors and plain values so the checkpoint still loads with ``weights_only``."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from brain2text.watch import InstabilityWatch


def capture_state(best: dict, latest_eval: dict, skipped_steps: int, nonfinite_in_a_row: int,
                  scaler: torch.amp.GradScaler, watch: InstabilityWatch | None,
                  rng: dict) -> dict:
    """Everything beyond weights, optimizer and schedule that the run's future depends on, as
    tensors and plain values (a checkpoint is loaded with ``weights_only``)."""
    return {
        "rng": rng,  # capture_rng() of this process
        "scaler": scaler.state_dict(), "watch": watch.state_dict() if watch else None,
        "best": best, "latest_eval": latest_eval, "skipped_steps": skipped_steps,
        "nonfinite_in_a_row": nonfinite_in_a_row,
    }


def capture_rng(generator: torch.Generator, device: torch.device) -> dict:
    """This process's random streams: augmentation, torch CPU and CUDA, numpy, python."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {"augment": generator.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                      float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def restore_rng(rng: dict, generator: torch.Generator) -> None:
    generator.set_state(rng["augment"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))


def restore_state(payload: dict, model: torch.nn.Module, optimizer, scheduler, scaler,
                  ema: AveragedModel | None, watch: InstabilityWatch | None,
                  generator: torch.Generator) -> tuple[dict, dict, int, int]:
    """Load a ``last.pt`` payload into the freshly built run; returns (best, latest_eval,
    skipped_steps, nonfinite_in_a_row)."""
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    saved = payload["resume"]
    scaler.load_state_dict(saved["scaler"])
    if ema is not None:
        ema.module.load_state_dict(payload["ema"])
        ema.n_averaged.fill_(payload["ema_n_averaged"])
    if watch is not None:
        watch.load_state_dict(saved["watch"])
    restore_rng(saved["rng"], generator)
    return (saved["best"], saved["latest_eval"], saved["skipped_steps"],
            saved["nonfinite_in_a_row"])
