"""What a run knows about itself beyond its weights: evaluations, the best checkpoint, counters
and every random stream. In the loop they are one frozen :class:`LoopState`; in ``last.pt`` its
``resume`` entry of plain values (a checkpoint is loaded with ``weights_only``, so it holds
tensors, numbers, strings, lists and dicts only)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
import yaml
from torch.optim.swa_utils import AveragedModel

from brain2text.config import RunConfig, config_differences, validate
from brain2text.distributed import Dist
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.scoring import Score
from brain2text.runs.checkpoint import Checkpoint, load_checkpoint
from brain2text.training.step import seed_everything
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

    def chosen(self, on_ema: bool) -> Evaluation:
        """The evaluation ``best.pt`` is chosen from: the EMA's with ``train.select_on_ema``
        (once there is one), else the raw weights'."""
        evaluation = self.ema if on_ema and self.ema is not None else self.raw
        if evaluation is None:
            raise ValueError("no evaluation was made yet")
        return evaluation

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

    def after(self, skipped: bool) -> Counters:
        """The counters after a step that was (or was not) skipped."""
        if skipped:
            return Counters(self.skipped_steps + 1, self.nonfinite_in_a_row + 1)
        return Counters(self.skipped_steps, 0)


@dataclass(frozen=True)
class LoopState:
    """What the training loop carries from batch to batch beside the weights, the optimizer
    and the schedule: the best evaluation (and an early stop), the latest evaluations, and the
    skip counters. With the states of the loss scaler, the instability watch and every random
    stream it is the ``resume`` entry of ``last.pt`` (:meth:`to_resume`, read back by
    :meth:`from_resume`; the entry's layout is that of every ``last.pt`` written so far)."""

    best: Best
    latest: LatestEval = LatestEval()
    counters: Counters = Counters()

    def after_step(self, skipped: bool) -> LoopState:
        return replace(self, counters=self.counters.after(skipped))

    def to_resume(
        self, scaler: torch.amp.GradScaler, watch: InstabilityWatch | None, rngs: list[dict]
    ) -> dict:
        """The checkpoint's ``resume`` entry; ``rngs`` holds :func:`capture_rng` of every rank,
        in rank order (one: a single process)."""
        out: dict[str, Any] = {
            "rng": rngs[0],
            "scaler": scaler.state_dict(),
            "watch": watch.state_dict() if watch else None,
            "best": self.best.to_dict(),
            "latest_eval": self.latest.checkpoint_entries(),
            "skipped_steps": self.counters.skipped_steps,
            "nonfinite_in_a_row": self.counters.nonfinite_in_a_row,
        }
        if len(rngs) > 1:
            out["rng_by_rank"] = rngs
        return out

    @classmethod
    def from_resume(cls, saved: dict) -> LoopState:
        return cls(
            Best.from_dict(saved["best"]),
            LatestEval.from_entries(saved["latest_eval"]),
            Counters(saved["skipped_steps"], saved["nonfinite_in_a_row"]),
        )


def capture_rng(generator: torch.Generator, device: torch.device) -> dict:
    """This process's random streams: augmentation, torch CPU and CUDA, numpy, python."""
    # the legacy form: a tuple (name, keys, position, has_gauss, cached_gaussian)
    np_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
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


@dataclass(frozen=True)
class Restored:
    """What :func:`restore_state` hands back to the loop."""

    state: LoopState
    generator: torch.Generator  # the augmentation generator the run goes on with
    note: str | None  # for the run log: ranks > 0 whose streams start afresh


def restore_state(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    ema: AveragedModel | None,
    watch: InstabilityWatch | None,
    generator: torch.Generator,
    ranks: Dist,
    seed: int,
) -> Restored:
    """Load a ``last.pt`` checkpoint into the freshly built run; called last, once everything
    that draws random numbers while being built has drawn them. Each rank continues its own
    random streams; when the checkpoint was written by another number of processes, rank 0
    continues the saved ones and ranks > 0 are seeded afresh (from ``seed`` and the step)."""
    saved = checkpoint.resume
    if saved is None or checkpoint.optimizer is None or checkpoint.scheduler is None:
        raise DataError(f"step {checkpoint.step}: the checkpoint is not a resume point (last.pt)")
    model.load_state_dict(checkpoint.model)
    optimizer.load_state_dict(checkpoint.optimizer)
    scheduler.load_state_dict(checkpoint.scheduler)
    scaler.load_state_dict(saved["scaler"])
    if ema is not None:
        if checkpoint.ema is None or checkpoint.ema_n_averaged is None:
            raise DataError(f"step {checkpoint.step}: the checkpoint holds no EMA weights")
        ema.module.load_state_dict(checkpoint.ema)
        ema.n_averaged.fill_(checkpoint.ema_n_averaged)
    if watch is not None:
        watch.load_state_dict(saved["watch"])
    restore_rng(saved["rng"], generator)
    by_rank, note = saved.get("rng_by_rank", []), None
    if len(by_rank) == ranks.world_size:
        restore_rng(by_rank[ranks.rank], generator)
    elif ranks.enabled:
        if ranks.rank:
            generator = seed_everything(seed + checkpoint.step + 1, ranks.rank, generator.device)
        note = (
            f"the checkpoint was written by {max(len(by_rank), 1)} process(es), this run has "
            f"{ranks.world_size}: dropout and augmentation streams of ranks > 0 start afresh"
        )
    return Restored(LoopState.from_resume(saved), generator, note)


def read_resume_point(
    run_dir: Path, expected: RunConfig | None = None
) -> tuple[Checkpoint, RunConfig]:
    """``run_dir``'s ``checkpoints/last.pt`` and the config stored in it, checked: a resume
    state this version reads, the run folder's config.yaml unchanged, the same run as
    ``expected`` (``--auto-resume``'s run file), and batches left to train; else a DataError."""
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.is_file():
        raise DataError(
            f"{ckpt}: not found, so {run_dir} cannot be resumed (no checkpoint was "
            "written yet; start the run again)"
        )
    payload = load_checkpoint(ckpt)
    saved = payload.resume or {}
    if "evaluation" not in saved.get("best", {}):
        raise DataError(
            f"{ckpt}: holds no resume state this version reads (written by an "
            "older brain2text); start the run again"
        )
    config = validate(payload.config, origin=f"{ckpt} (stored config)")
    if _stored_config(run_dir / "config.yaml") != config:
        raise DataError(
            f"{run_dir / 'config.yaml'}: missing or differs from the config stored in "
            f"{ckpt}; restore it to resume"
        )
    if expected is not None and expected != config:
        key, (given, stored) = config_differences([expected.to_dict(), config.to_dict()])[0]
        raise DataError(
            f"{run_dir}: its run has {key}={stored}, the run file gives {given}; "
            "--auto-resume continues only the same run (choose another --out)"
        )
    step = payload.step
    if step + 1 >= config.train.n_batch or saved["best"].get("stopped_early"):
        raise DataError(f"{run_dir}: the run already ended at step {step}; nothing to resume")
    return payload, config


def _stored_config(path: Path) -> RunConfig | None:
    try:
        return validate(yaml.safe_load(path.read_text()), origin=str(path))
    except (OSError, yaml.YAMLError, ConfigError):
        return None
