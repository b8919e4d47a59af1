"""The validation split: the release's own (Brain-to-Text '25 ships one), or carved out of the
training trials.

Checkpoint choice and the instability watch need held-out sentences that are not the test
split. A day recorded in several blocks gives its last ``blocks_per_day`` blocks to validation
(a day with a single block keeps it for training). A day whose blocks are not recorded (a
reference pickle import: every block is ``UNKNOWN_BLOCK``) gives the last
``fraction_when_no_blocks`` of its trials, in file order, so such a dataset still gets a
validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain2text.data.dataset import PreparedDataset, PreparedSplit
from brain2text.data.manifest import UNKNOWN_BLOCK


@dataclass(frozen=True)
class ValidationSplit:
    train: np.ndarray  # (n_train,) int64 trial indices into the split
    val: np.ndarray  # (n_val,) int64
    days_by_fraction: tuple[int, ...]  # day indices carved by trial fraction (no block numbers)


def _last_fraction(rows: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the last ``fraction * n`` rows (rounded half up), at least one, never
    all."""
    n_val = min(max(int(fraction * len(rows) + 0.5), 1), len(rows) - 1) if fraction > 0 else 0
    mask = np.zeros(len(rows), dtype=bool)
    if n_val > 0:
        mask[len(rows) - n_val :] = True
    return mask


def carve_validation(
    split: PreparedSplit, blocks_per_day: int, fraction_when_no_blocks: float = 0.0
) -> ValidationSplit:
    """(train, validation) trial indices of ``split``, day by day (see the module docstring)."""
    train, val, by_fraction = [], [], []
    for day in np.unique(split.day_index):
        rows = np.flatnonzero(split.day_index == day)
        blocks = np.unique(split.block[rows])
        if np.all(blocks == UNKNOWN_BLOCK):
            in_val = (
                _last_fraction(rows, fraction_when_no_blocks)
                if blocks_per_day > 0
                else np.zeros(len(rows), dtype=bool)
            )
            if in_val.any():
                by_fraction.append(int(day))
        else:
            held = blocks[-blocks_per_day:] if 0 < blocks_per_day < len(blocks) else blocks[:0]
            in_val = np.isin(split.block[rows], held)
        val.append(rows[in_val])
        train.append(rows[~in_val])
    join = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)  # noqa: E731
    return ValidationSplit(join(train), join(val), tuple(by_fraction))


def split_validation(
    split: PreparedSplit, blocks_per_day: int, fraction_when_no_blocks: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) trial indices; :func:`carve_validation` without the day list."""
    carved = carve_validation(split, blocks_per_day, fraction_when_no_blocks)
    return carved.train, carved.val


@dataclass(frozen=True)
class TrainAndValidation:
    """The trials a run trains on and the ones it validates on: the release's own validation
    split when the prepared dataset has one (Brain-to-Text '25's data_val files), else trials
    carved from the training split."""

    train_split: PreparedSplit
    train: np.ndarray
    val_split: PreparedSplit
    val: np.ndarray
    days_by_fraction: tuple[int, ...] = ()


def train_and_validation(
    dataset: PreparedDataset, blocks_per_day: int, fraction_when_no_blocks: float = 0.0
) -> TrainAndValidation:
    train_split = dataset.split("train")
    if dataset.has_split("val"):
        val_split = dataset.split("val")
        return TrainAndValidation(
            train_split,
            np.arange(len(train_split), dtype=np.int64),
            val_split,
            np.arange(len(val_split), dtype=np.int64),
        )
    carved = carve_validation(train_split, blocks_per_day, fraction_when_no_blocks)
    return TrainAndValidation(
        train_split, carved.train, train_split, carved.val, carved.days_by_fraction
    )
