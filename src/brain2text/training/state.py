"""What a run knows about itself beyond its weights: evaluations, the best checkpoint, counters
and every random stream, as frozen dataclasses in the loop and plain values in ``last.pt`` (a
checkpoint is loaded with ``weights_only``, so it holds tensors, numbers, strings, lists and
dicts only)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from brain2text.evaluation.scoring import Score
from brain2text.training.watch import InstabilityWatch

Weights = Literal["raw", "ema"]


@dataclass(frozen=True)
class Evaluation:
    """One set of weights scored on the evaluation split at one step."""

    step: int
    split: str  # "val" or "test"
    weights: Weights
    score: Score
    wer: float | None = None  # with eval.word_decoding, at the evaluations that decode words

    def metric(self, name: str) -> float:
        """``per`` or ``wer`` (inf when this evaluation decoded no words)."""
        if name == "wer":
            return self.wer if self.wer is not None else math.inf
        return self.score.per

    def to_dict(self) -> dict:
        return {
            **self.score.to_dict(),
            "split": self.split,
            "step": self.step,
            "weights": self.weights,
            "wer": self.wer,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        return cls(
            data["step"],
            data["split"],
            data.get("weights", "raw"),
            Score.from_dict(data),
            data.get("wer"),
        )


@dataclass(frozen=True)
class StoppedEarly:
    step: int
    reason: str
    best_step: int | None

    def to_dict(self) -> dict:
        return {"step": self.step, "reason": self.reason, "best_step": self.best_step}


@dataclass(frozen=True)
class Best:
    """The evaluation ``best.pt`` holds (None before the first), and an early stop if any."""

    evaluation: Evaluation | None = None
    stopped_early: StoppedEarly | None = None
    metric: str = "per"  # what it was chosen on: train.select_on

    @property
    def per(self) -> float:
        return self.evaluation.score.per if self.evaluation else math.inf

    @property
    def step(self) -> int | None:
        return self.evaluation.step if self.evaluation else None

    @property
    def value(self) -> float:
        """The chosen metric of the best evaluation (inf before the first)."""
        return self.evaluation.metric(self.metric) if self.evaluation else math.inf

    def improved_by(self, candidate: Evaluation) -> bool:
        return candidate.metric(self.metric) < self.value

    def stop(self, step: int, reason: str) -> Best:
        return replace(self, stopped_early=StoppedEarly(step, reason, self.step))

    def to_dict(self) -> dict:
        return {
            "evaluation": self.evaluation.to_dict() if self.evaluation else None,
            "stopped_early": self.stopped_early.to_dict() if self.stopped_early else None,
            "metric": self.metric,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Best:
        ev, stop = data.get("evaluation"), data.get("stopped_early")
        return cls(
            Evaluation.from_dict(ev) if ev else None,
            StoppedEarly(**stop) if stop else None,
            data.get("metric", "per"),
        )


@dataclass(frozen=True)
class LatestEval:
    """The last evaluation of the raw weights and of their EMA (None when not kept)."""

    raw: Evaluation | None = None
    ema: Evaluation | None = None

    def checkpoint_entries(self) -> dict:
        """The ``eval`` / ``eval_ema`` entries every checkpoint holds."""
        out = {}
        if self.raw is not None:
            out["eval"] = self.raw.to_dict()
        if self.ema is not None:
            out["eval_ema"] = self.ema.to_dict()
        return out

    @classmethod
    def from_entries(cls, payload: dict) -> LatestEval:
        raw, ema = payload.get("eval"), payload.get("eval_ema")
        return cls(
            Evaluation.from_dict(raw) if raw else None, Evaluation.from_dict(ema) if ema else None
        )


@dataclass(frozen=True)
class Counters:
    skipped_steps: int = 0  # steps skipped for a non-finite loss or gradient, in all
    nonfinite_in_a_row: int = 0


@dataclass(frozen=True)
class Restored:
    """What :func:`restore_state` hands back to the loop."""

    best: Best
    latest: LatestEval
    counters: Counters


def capture_state(
    best: Best,
    latest: LatestEval,
    counters: Counters,
    scaler: torch.amp.GradScaler,
    watch: InstabilityWatch | None,
    rng: dict,
) -> dict:
    """Everything beyond weights, optimizer and schedule that the run's future depends on."""
    return {
        "rng": rng,  # capture_rng() of this process
        "scaler": scaler.state_dict(),
        "watch": watch.state_dict() if watch else None,
        "best": best.to_dict(),
        "latest_eval": latest.checkpoint_entries(),
        "skipped_steps": counters.skipped_steps,
        "nonfinite_in_a_row": counters.nonfinite_in_a_row,
    }


def capture_rng(generator: torch.Generator, device: torch.device) -> dict:
    """This process's random streams: augmentation, torch CPU and CUDA, numpy, python."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "augment": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy": [
            np_state[0],
            np_state[1].tolist(),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def restore_rng(rng: dict, generator: torch.Generator) -> None:
    generator.set_state(rng["augment"].cpu())  # a generator's state is a CPU byte tensor
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))


def restore_state(
    payload: dict,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    scaler,
    ema: AveragedModel | None,
    watch: InstabilityWatch | None,
    generator: torch.Generator,
) -> Restored:
    """Load a ``last.pt`` payload into the freshly built run."""
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
    return Restored(
        Best.from_dict(saved["best"]),
        LatestEval.from_entries(saved["latest_eval"]),
        Counters(saved["skipped_steps"], saved["nonfinite_in_a_row"]),
    )
