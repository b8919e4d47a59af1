"""Threads and determinism of a training process, set before anything is built."""

from __future__ import annotations

import torch

from brain2text.config import TrainConfig


def configure_determinism(config: TrainConfig) -> None:
    """``train.threads`` intra-op threads (None: torch's default)."""
    if config.threads:
        torch.set_num_threads(config.threads)
