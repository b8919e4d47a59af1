"""The keys of ``metrics.jsonl`` rows (and TensorBoard tags): the one place that names them.

Training writes a row per logged batch (``step``, ``train/loss``, ``lr``, ``grad_norm``,
``skipped_steps``, ``time_per_batch``, ``samples_per_s``), a row per evaluation
(``<split>/loss``, ``<split>/per``, ``<split>/per/<day>``, optionally ``<split>/wer`` and the EMA
weights' ``<split>/loss_ema`` and ``<split>/per_ema``) and a row per instability warning
(``step``, ``warning``, ``message``, ``lr``); reports read them back.
"""

from __future__ import annotations

METRICS_FILE = "metrics.jsonl"  # in the run folder: one JSON object a line

STEP = "step"
TRAIN_LOSS = "train/loss"
LR = "lr"
GRAD_NORM = "grad_norm"
SKIPPED_STEPS = "skipped_steps"  # a batch row's count of steps skipped so far (non-finite)
TIME_PER_BATCH = "time_per_batch"  # seconds
SAMPLES_PER_S = "samples_per_s"  # a batch row's training speed
WARNING = "warning"  # a warning row's kind: "trend", "grad_norm" or "nonfinite"
MESSAGE = "message"

EVAL_SPLITS = ("val", "test")  # the splits training evaluates on, the prefixes of their rows


def loss(split: str) -> str:
    return f"{split}/loss"


def per(split: str) -> str:
    return f"{split}/per"


def per_day_prefix(split: str) -> str:
    """The prefix of the per-day PER keys: ``per_day_prefix(s) + day == per_day(s, day)``."""
    return f"{split}/per/"


def per_day(split: str, day: str) -> str:
    return f"{per_day_prefix(split)}{day}"


def wer(split: str) -> str:
    return f"{split}/wer"


def loss_ema(split: str) -> str:
    return f"{split}/loss_ema"


def per_ema(split: str) -> str:
    return f"{split}/per_ema"
