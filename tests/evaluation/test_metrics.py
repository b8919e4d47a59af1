import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brain2text.evaluation.metrics import (
    align,
    confusions,
    edit_distance,
    error_rate,
    format_alignment,
)


def _naive_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@given(st.lists(st.integers(1, 5), max_size=12), st.lists(st.integers(1, 5), max_size=12))
def test_edit_distance_matches_dynamic_programming(a, b):
    assert edit_distance(a, b) == _naive_distance(a, b)


def test_per_edge_cases():
    assert error_rate([[1, 2, 3]], [[1, 2, 3]]).rate == 0.0
    assert error_rate([[1, 2]], [[]]).rate == 1.0  # all deleted
    assert error_rate([[1]], [[2, 3, 4]]).rate == 3.0  # insertions can push PER over 1
    assert math.isnan(error_rate([], []).rate)
    assert math.isnan(error_rate([[]], [[1]]).rate)  # no reference phonemes
    r = error_rate([[1, 2, 3, 4], [5]], [[1, 2, 3, 4], [6]])
    assert r.rate == pytest.approx(1 / 5)  # total edits / total phonemes
    assert r.mean_sentence_rate == pytest.approx(0.5)  # mean of per-sentence rates
    with pytest.raises(ValueError):
        error_rate([[1]], [])


def test_alignment_and_confusions():
    pairs = align(["AA", "B", "K"], ["AA", "P", "K", "S"])
    assert pairs == [("AA", "AA"), ("B", "P"), ("K", "K"), ("*", "S")]
    assert format_alignment(pairs) == "AA (B->P) K (*->S)"
    assert confusions([pairs, [("T", "*")]]) == {("B", "P"): 1, ("*", "S"): 1, ("T", "*"): 1}
    assert sum(r != h for r, h in pairs) == edit_distance(["AA", "B", "K"], ["AA", "P", "K", "S"])


def test_rates_by_day_group_sentences_by_their_day():
    from brain2text.evaluation.metrics import rates_by_day

    refs = [["a", "b"], ["c"], ["d", "e", "f"]]
    hyps = [["a"], ["c"], ["x", "e", "f"]]
    assert rates_by_day(refs, hyps, [1, 0, 1], ["d0", "d1"]) == {"d0": 0.0, "d1": 2 / 5}
    assert rates_by_day([], [], [], ["d0"]) == {}
