"""From a prepared split to padded batches: the training order and evaluation batches.

The training order is a pure function of (seed, batch number): batch ``k`` takes positions
``k*B .. k*B+B-1`` of an endless stream of per-epoch permutations of the training trials, each
permutation drawn from ``numpy.random.default_rng((seed, epoch))``. A run can therefore restart
at any batch and see exactly the trials it would have seen. With ``days_per_batch``
(:func:`day_batch_positions`, the Brain-to-Text '25 baseline's sampling) batch ``k`` is drawn
from ``numpy.random.default_rng((seed, k, 2))``: that many random days, an equal share of
trials from each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from brain2text.data.dataset import PreparedSplit


def batch_positions(batch: int, batch_size: int, n: int, seed: int) -> np.ndarray:
    """Trial positions (indices into the training list) of training batch ``batch``."""
    stream = np.arange(batch * batch_size, (batch + 1) * batch_size)
    epochs, offsets = np.divmod(stream, n)
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        order = np.random.default_rng((seed, int(epoch))).permutation(n)
        where = epochs == epoch
        out[where] = order[offsets[where]]
    return out


def day_batch_positions(
    batch: int, batch_size: int, day_of: np.ndarray, days_per_batch: int, seed: int
) -> np.ndarray:
    """Trial positions of training batch ``batch`` drawn from ``days_per_batch`` random days
    (all days when there are fewer): the batch is shared out as evenly as possible between
    them, each day's share drawn without replacement (with replacement if the day has fewer
    trials than its share). ``day_of`` is the day of each training trial."""
    rng = np.random.default_rng((seed, batch, 2))
    days = np.unique(day_of)
    chosen = np.sort(rng.choice(days, size=min(days_per_batch, len(days)), replace=False))
    shares = np.full(len(chosen), batch_size // len(chosen))
    shares[: batch_size % len(chosen)] += 1
    out = []
    for day, share in zip(chosen, shares, strict=False):
        rows = np.flatnonzero(day_of == day)
        out.append(rng.choice(rows, size=share, replace=share > len(rows)))
    return np.concatenate(out).astype(np.int64)


@dataclass
class Batch:
    features: torch.Tensor  # (B, T, C) float32, zero-padded
    n_bins: torch.Tensor  # (B,)
    phonemes: torch.Tensor  # (B, P) int64, zero-padded
    n_phones: torch.Tensor  # (B,)
    day_index: torch.Tensor  # (B,)
    trial_ids: torch.Tensor  # (B,) indices into the split

    def pin_memory(self) -> Batch:
        return Batch(*(t.pin_memory() for t in self.__dict__.values()))

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in self.__dict__.values()))


def collate(split: PreparedSplit, ids: np.ndarray, pad_to: int | None = None) -> Batch:
    """Trials ``ids`` zero-padded to their longest (or to ``pad_to`` bins, when longer)."""
    n_bins = split.n_bins[ids]
    n_phones = split.n_phones[ids]
    n_time = max(int(n_bins.max()), pad_to or 0)
    features = np.zeros((len(ids), n_time, split_width(split, ids)), dtype=np.float32)
    phonemes = np.zeros((len(ids), max(int(n_phones.max()), 1)), dtype=np.int64)
    for row, i in enumerate(ids):
        split.copy_features(int(i), out=features[row, : n_bins[row]])
        if n_phones[row]:
            phonemes[row, : n_phones[row]] = split.phonemes(int(i))
    return Batch(
        torch.from_numpy(features),
        torch.from_numpy(n_bins.astype(np.int64)),
        torch.from_numpy(phonemes),
        torch.from_numpy(n_phones.astype(np.int64)),
        torch.from_numpy(split.day_index[ids].astype(np.int64)),
        torch.from_numpy(np.asarray(ids, dtype=np.int64)),
    )


def split_width(split: PreparedSplit, ids: np.ndarray) -> int:
    return int(split.features(int(ids[0])).shape[1])


def bucketed_epoch(
    lengths: np.ndarray, batch_size: int, pool_batches: int, seed: int, epoch: int
) -> np.ndarray:
    """(n // B, B) trial positions of one epoch of length-bucketed batches.

    The epoch's random permutation (a remainder of fewer than B trials is left out) is cut into
    pools of ``pool_batches`` batches; each pool is sorted by trial length and cut into batches,
    and the batches of the epoch are shuffled. Batches hold trials of similar length (less
    padding) while which trials meet, and the order of batches, stay random.
    """
    rng = np.random.default_rng((seed, epoch, 1))
    n_full = len(lengths) // batch_size * batch_size
    order = rng.permutation(len(lengths))[:n_full]
    pool = batch_size * pool_batches
    sorted_pools = [
        chunk[np.argsort(lengths[chunk], kind="stable")]
        for chunk in np.split(order, range(pool, n_full, pool))
    ]
    batches = np.concatenate(sorted_pools).reshape(-1, batch_size)
    return batches[rng.permutation(len(batches))]


class TrainBatches(Dataset):
    """Map-style dataset whose item ``k`` is the whole collated training batch ``start + k``.

    With ``days_per_batch`` set, batches come from :func:`day_batch_positions`; with
    ``pool_batches`` set (and at least one full batch of trials), from :func:`bucketed_epoch`;
    otherwise from :func:`batch_positions`. With ``share`` (one rank of
    several), an item is that slice of the batch's rows, padded to the whole batch's longest
    trial so each row is exactly what one process would see.
    """

    def __init__(
        self,
        split: PreparedSplit,
        indices: np.ndarray,
        batch_size: int,
        seed: int,
        start: int,
        stop: int,
        pool_batches: int | None = None,
        share: slice | None = None,
        days_per_batch: int | None = None,
    ) -> None:
        self.split, self.indices, self.share = split, indices, share
        self.days_per_batch = days_per_batch
        self.batch_size, self.seed, self.start, self.stop = batch_size, seed, start, stop
        per_epoch = len(indices) // batch_size
        self.pool_batches = pool_batches if pool_batches and per_epoch > 0 else None
        self._epoch: tuple[int, np.ndarray] | None = None  # cache: (epoch, its batches)

    def __len__(self) -> int:
        return self.stop - self.start

    def positions(self, batch: int) -> np.ndarray:
        if self.days_per_batch is not None:
            return day_batch_positions(
                batch,
                self.batch_size,
                self.split.day_index[self.indices],
                self.days_per_batch,
                self.seed,
            )
        if self.pool_batches is None:
            return batch_positions(batch, self.batch_size, len(self.indices), self.seed)
        epoch, j = divmod(batch, len(self.indices) // self.batch_size)
        if self._epoch is None or self._epoch[0] != epoch:
            lengths = self.split.n_bins[self.indices]
            self._epoch = (
                epoch,
                bucketed_epoch(lengths, self.batch_size, self.pool_batches, self.seed, epoch),
            )
        return self._epoch[1][j]

    def __getitem__(self, k: int) -> Batch:
        ids = self.indices[self.positions(self.start + k)]
        if self.share is None:
            return collate(self.split, ids)
        return collate(self.split, ids[self.share], pad_to=int(self.split.n_bins[ids].max()))


def eval_batches(
    split: PreparedSplit, indices: np.ndarray, batch_size: int, rank: int = 0, world_size: int = 1
):
    """Batches over ``indices`` in order of length (less padding); yields collated Batches.
    With several ranks, rank ``r`` gets batches ``r, r + world_size, ...`` of that order."""
    order = indices[np.argsort(split.n_bins[indices], kind="stable")]
    for start in range(0, len(order), batch_size)[rank::world_size]:
        yield collate(split, order[start : start + batch_size])
