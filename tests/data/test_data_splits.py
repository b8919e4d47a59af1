"""Validation carving: last blocks of each day, or the last trial fraction of a day whose
blocks are unknown (a reference pickle import)."""

from types import SimpleNamespace

import numpy as np

from brain2text.data.manifest import UNKNOWN_BLOCK
from brain2text.data.splits import carve_validation, split_validation


def _split(days, blocks):
    return SimpleNamespace(day_index=np.asarray(days), block=np.asarray(blocks))


def test_last_blocks_of_each_day_go_to_validation():
    split = _split([0, 0, 0, 0, 1, 1, 2], [1, 1, 2, 3, 5, 5, 7])
    carved = carve_validation(split, blocks_per_day=1, fraction_when_no_blocks=0.5)
    assert carved.val.tolist() == [3] and carved.train.tolist() == [0, 1, 2, 4, 5, 6]
    assert carved.days_by_fraction == ()  # every day has block numbers
    two = carve_validation(split, blocks_per_day=2)
    assert two.val.tolist() == [2, 3]  # day 0 keeps block 1; days 1 and 2 have one block


def test_days_without_blocks_give_their_last_trials_in_file_order():
    u = UNKNOWN_BLOCK
    split = _split([0] * 10 + [1] * 4 + [2] * 6, [u] * 14 + [1, 1, 1, 2, 2, 2])
    carved = carve_validation(split, blocks_per_day=1, fraction_when_no_blocks=0.1)
    # day 0: 10% of 10 -> its last trial; day 1: 10% of 4 rounds to 0 -> at least one;
    # day 2 has blocks: its last block
    assert carved.val.tolist() == [9, 13, 17, 18, 19]
    assert carved.days_by_fraction == (0, 1)
    assert sorted(carved.train.tolist() + carved.val.tolist()) == list(range(20))
    quarter = carve_validation(split, 1, 0.25)  # 2.5 trials round up to 3; 1 of day 1
    assert quarter.val.tolist() == [7, 8, 9, 13, 17, 18, 19]


def test_no_validation_when_switched_off_and_a_single_trial_stays_in_training():
    u = UNKNOWN_BLOCK
    split = _split([0] * 5 + [1], [u] * 6)
    assert carve_validation(split, 1, 0.0).val.tolist() == []  # fraction 0: off
    assert carve_validation(split, 0, 0.5).val.tolist() == []  # no validation at all
    carved = carve_validation(split, 1, 0.5)
    assert carved.val.tolist() == [2, 3, 4]  # 2.5 rounds up; the day of one trial keeps it
    assert split_validation(split, 1, 0.5)[1].tolist() == [2, 3, 4]
