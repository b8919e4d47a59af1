import numpy as np
import pytest

from brain2text.synth.schedule import (
    DEFAULT_DAYS,
    HOLDOUT_DAYS,
    MOUTHED_DAYS,
    day_numbers,
    holdout_days_among,
    n_train_blocks,
    plan_day,
    split_sizes,
)


def test_real_dates():
    assert len(DEFAULT_DAYS) == 24
    assert DEFAULT_DAYS[0] == "t12.2022.04.28" and DEFAULT_DAYS[-1] == "t12.2022.08.25"
    assert list(DEFAULT_DAYS) == sorted(DEFAULT_DAYS)
    assert len(HOLDOUT_DAYS) == 15 and set(HOLDOUT_DAYS) <= set(DEFAULT_DAYS)
    assert set(MOUTHED_DAYS) <= set(DEFAULT_DAYS)
    assert day_numbers()[0] == 0 and day_numbers()[-1] == 119


def test_holdout_days_fall_back_to_every_chosen_day():
    assert holdout_days_among(DEFAULT_DAYS[:3], 20) == DEFAULT_DAYS[:3]
    assert holdout_days_among(DEFAULT_DAYS[:6], 20) == DEFAULT_DAYS[4:6]
    assert holdout_days_among(DEFAULT_DAYS, 0) == ()


@pytest.mark.parametrize("total,parts", [(40, 2), (370, 10), (7, 7), (3, 1)])
def test_split_sizes(total, parts):
    sizes = split_sizes(total, parts, np.random.default_rng(0))
    assert sum(sizes) == total and len(sizes) == parts and min(sizes) >= 1


@pytest.mark.parametrize("n", [1, 7, 8, 16, 20, 40, 60, 370, 1000])
def test_training_blocks(n):
    blocks = n_train_blocks(n)
    assert blocks >= (2 if n >= 8 else 1)  # the trainer validates on a day's last block
    assert -(-n // blocks) <= 42 or blocks == 1


def test_plan_day_order_and_numbering():
    blocks = plan_day(370, 37, 80, np.random.default_rng(1))
    assert [b.number for b in blocks] == list(range(1, len(blocks) + 1))
    splits = [b.split for b in blocks]
    assert splits[:2] == ["competitionHoldOut"] * 2 and splits[-1] == "test"
    assert set(splits[2:-1]) == {"train"}
    train = [b.n_sentences for b in blocks if b.split == "train"]
    assert sum(train) == 370 and all(20 <= s <= 50 for s in train)
    assert plan_day(40, 10, 0, np.random.default_rng(1))[0].split == "train"
