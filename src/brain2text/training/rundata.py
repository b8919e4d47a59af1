"""What a run trains and evaluates on: the prepared dataset, the validation carving, the
trials the model can use (long enough for its kernel, with room for a CTC alignment), and the
loader of its training batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from brain2text.config import RunConfig
from brain2text.data.batches import Batch, TrainBatches
from brain2text.data.dataset import PreparedDataset, PreparedSplit, open_prepared
from brain2text.data.splits import train_and_validation
from brain2text.distributed import Dist
from brain2text.errors import DataError
from brain2text.model.ctc import ctc_frames_needed, output_lengths


@dataclass(frozen=True)
class SkippedTrial:
    where: str
    reason: str


def check_trials(
    split: PreparedSplit, indices: np.ndarray, kernel_len: int, stride_len: int, skip: bool
) -> tuple[np.ndarray, list[SkippedTrial]]:
    """Keep the trials the model can be trained or scored on; error on (or skip) the others."""
    kept, skipped = [], []
    for i in indices:
        n_bins = int(split.n_bins[i])
        reason = None
        if n_bins < kernel_len:
            reason = f"{n_bins} bins is shorter than model.kernel_len={kernel_len}"
        elif split.labelled:
            n_out = output_lengths(n_bins, kernel_len, stride_len)
            needed = ctc_frames_needed(split.phonemes(int(i)))
            if needed == 0:
                reason = "empty phoneme sequence"
            elif needed > n_out:
                reason = (
                    f"{split.n_phones[i]} phonemes need {needed} output frames but "
                    f"{n_bins} bins give {n_out} (kernel_len={kernel_len}, stride_len={stride_len})"
                )
        if reason is None:
            kept.append(int(i))
        elif skip:
            skipped.append(SkippedTrial(split.describe(int(i)), reason))
        else:
            raise DataError(
                f"{split.describe(int(i))}: {reason} (set data.on_invalid_trial=skip to skip it)"
            )
    return np.asarray(kept, dtype=np.int64), skipped


@dataclass(frozen=True)
class RunData:
    """What a run trains and evaluates on, after validation carving and trial checks."""

    dataset: PreparedDataset
    train_split: PreparedSplit
    train_idx: np.ndarray
    eval_split: PreparedSplit
    eval_idx: np.ndarray
    eval_name: str  # "val" or "test"
    skipped: list[SkippedTrial]
    notes: tuple[str, ...] = ()  # facts about the carving for the run log


def load_run_data(config: RunConfig) -> RunData:
    dataset = open_prepared(Path(config.data.path))
    dc = config.data
    split = train_and_validation(dataset, dc.val_blocks_per_day, dc.val_fraction_when_no_blocks)
    train_split, train_idx = split.train_split, split.train
    notes = []
    if split.days_by_fraction and dc.eval_split == "val":
        notes.append(
            f"{len(split.days_by_fraction)} day(s) have no block numbers (a pickle import): "
            f"their last {dc.val_fraction_when_no_blocks:g} of training trials, in file order, "
            "are the validation split (data.val_fraction_when_no_blocks)"
        )
    if dataset.has_split("val") and dc.eval_split == "val":
        notes.append(
            f"validation on the dataset's own val split ({len(split.val)} trials); "
            "every training trial trains"
        )
    if dc.eval_split == "val":
        eval_split, eval_idx, eval_name = split.val_split, split.val, "val"
        if len(eval_idx) == 0:
            raise DataError(
                f"{dataset.path}: no day has two training blocks, so no validation "
                "split can be carved (set data.eval_split=test to select on test)"
            )
    else:
        eval_split, eval_name = dataset.split("test"), "test"
        eval_idx = np.arange(len(eval_split), dtype=np.int64)
    mc, skip = config.model, dc.on_invalid_trial == "skip"
    train_idx, skipped = check_trials(train_split, train_idx, mc.kernel_len, mc.stride_len, skip)
    eval_idx, skipped_eval = check_trials(eval_split, eval_idx, mc.kernel_len, mc.stride_len, skip)
    if len(train_idx) == 0:
        raise DataError(f"{dataset.path}: no usable training trial")
    return RunData(
        dataset,
        train_split,
        train_idx,
        eval_split,
        eval_idx,
        eval_name,
        skipped + skipped_eval,
        tuple(notes),
    )


def train_loader(
    data: RunData,
    config: RunConfig,
    device: torch.device,
    first: int = 0,
    stop: int | None = None,
    ranks: Dist | None = None,
) -> DataLoader[Batch]:
    """Training batches ``first .. stop - 1`` (``stop``: train.n_batch), this rank's share of
    each. Batch k is a pure function of (seed, k), so a resumed run starts at the batch after
    its checkpoint; the loader's own generator keeps its base-seed draw off the global RNG, so
    the model's dropout draws are the same whoever iterates it."""
    tc, ranks = config.train, ranks or Dist()
    batches = TrainBatches(
        data.train_split,
        data.train_idx,
        tc.batch_size,
        tc.seed,
        first,
        tc.n_batch if stop is None else stop,
        tc.length_bucket_pool,
        share=ranks.share(tc.batch_size) if ranks.enabled else None,
        days_per_batch=tc.days_per_batch,
    )
    return DataLoader(
        batches,
        batch_size=None,
        shuffle=False,
        num_workers=tc.num_workers,
        persistent_workers=tc.num_workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(tc.seed),
    )
