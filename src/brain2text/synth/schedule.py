"""Recording schedule: the real session dates, hold-out days, blocks and their splits.

Within a day, blocks are numbered from 1 in recording order: the two hold-out blocks first (on
hold-out days), then the training blocks, then the single test block, so a train file on a
hold-out day starts at block 3, as in the real release.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DEFAULT_DAYS: tuple[str, ...] = tuple(
    f"t12.2022.{d}"
    for d in (
        "04.28", "05.05", "05.17", "05.19", "05.24", "05.26", "06.02", "06.07", "06.14", "06.16",
        "06.21", "06.23", "06.28", "07.05", "07.14", "07.21", "07.27", "07.29", "08.02", "08.11",
        "08.13", "08.18", "08.23", "08.25",
    )
)  # fmt: skip
# Day indices of the competition partition in the public reference decoder's inference code
# (``testDayIdxs = [4, 5, ..., 20]``): the 15 days with a competitionHoldOut file.
HOLDOUT_DAY_INDICES: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 18, 19, 20)
HOLDOUT_DAYS: tuple[str, ...] = tuple(DEFAULT_DAYS[i] for i in HOLDOUT_DAY_INDICES)
MOUTHED_DAYS: tuple[str, ...] = (
    "t12.2022.06.23", "t12.2022.08.18", "t12.2022.08.23", "t12.2022.08.25",
)  # fmt: skip

SPLITS: tuple[str, ...] = ("train", "test", "competitionHoldOut")
DEFAULT_BLOCK_SIZE = 36  # target sentences per training block (real blocks: 20-50, ~30-42)
DEFAULT_MAX_BLOCK = 42  # training blocks never exceed this many sentences
DEFAULT_MIN_TRAIN_FOR_TWO_BLOCKS = 8  # from this many training sentences a day has >= 2 blocks
DEFAULT_HOLDOUT_BLOCKS = 2
DEFAULT_BLOCK_SIZE_CONCENTRATION = 40.0  # Dirichlet concentration of block-size variation


def session_date(name: str) -> dt.date:
    """``t12.2022.04.28`` -> date(2022, 4, 28)."""
    _, year, month, day = name.split(".")
    return dt.date(int(year), int(month), int(day))


def day_numbers(names: tuple[str, ...] = DEFAULT_DAYS) -> np.ndarray:
    """Calendar days since the first session, one per name (float64)."""
    first = session_date(names[0])
    return np.array([(session_date(n) - first).days for n in names], dtype=np.float64)


def holdout_days_among(chosen: tuple[str, ...], holdout_per_day: int) -> tuple[str, ...]:
    """The chosen days that carry hold-out blocks.

    The real hold-out days among ``chosen``; when none is among them (fewer than 5 days) and
    hold-out sentences are asked for, every chosen day carries hold-out blocks, so that a
    small set still has a hold-out split.
    """
    if holdout_per_day <= 0 or not chosen:
        return ()
    kept = tuple(d for d in chosen if d in HOLDOUT_DAYS)
    return kept or tuple(chosen)


@dataclass(frozen=True)
class Block:
    """One recording block: its number within the day, its split and its sentence count."""

    number: int
    split: str
    n_sentences: int


def split_sizes(total: int, n_parts: int, rng: np.random.Generator) -> list[int]:
    """``total`` split into ``n_parts`` positive, roughly equal sizes with mild random variation.

    Largest-remainder rounding of ``total`` x Dirichlet(concentration); every part >= 1.
    """
    if n_parts <= 0 or total < n_parts:
        raise ValueError(f"cannot split {total} sentences into {n_parts} non-empty blocks")
    shares = rng.dirichlet(np.full(n_parts, DEFAULT_BLOCK_SIZE_CONCENTRATION))
    extra = total - n_parts  # every block gets one sentence, the rest is shared out
    raw = shares * extra
    sizes = np.floor(raw).astype(int)
    order = np.argsort(-(raw - sizes), kind="stable")
    sizes[order[: extra - sizes.sum()]] += 1
    return [int(s) + 1 for s in sizes]


def n_train_blocks(n_train: int) -> int:
    """Number of training blocks for ``n_train`` sentences (>= 2 from 8 sentences on)."""
    if n_train <= 0:
        return 0
    n = max(round(n_train / DEFAULT_BLOCK_SIZE), -(-n_train // DEFAULT_MAX_BLOCK), 1)
    if n_train >= DEFAULT_MIN_TRAIN_FOR_TWO_BLOCKS:
        n = max(n, 2)
    return n


def plan_day(n_train: int, n_test: int, n_holdout: int, rng: np.random.Generator) -> list[Block]:
    """Blocks of one day in recording order: hold-out, train, then one test block."""
    blocks: list[Block] = []
    if n_holdout > 0:
        n_parts = min(DEFAULT_HOLDOUT_BLOCKS, n_holdout)
        for size in split_sizes(n_holdout, n_parts, rng):
            blocks.append(Block(len(blocks) + 1, "competitionHoldOut", size))
    if n_train > 0:
        for size in split_sizes(n_train, n_train_blocks(n_train), rng):
            blocks.append(Block(len(blocks) + 1, "train", size))
    if n_test > 0:
        blocks.append(Block(len(blocks) + 1, "test", n_test))
    return blocks
