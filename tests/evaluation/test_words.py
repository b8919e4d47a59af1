import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.evaluation.words import (
    bootstrap_interval,
    normalize_words,
    paired_change,
    rate_with_interval,
)


def test_normalisation_keeps_apostrophes_and_hyphens():
    assert normalize_words("I don't know -- well-known, OK?") == [
        "i",
        "don't",
        "know",
        "well-known",
        "ok",
    ]
    assert normalize_words("  ") == []


def test_wer_counts_word_edits_over_reference_words():
    refs = [["the", "cat", "sat"], ["hello"]]
    hyps = [["the", "bat", "sat", "down"], []]
    r = rate_with_interval(refs, hyps)
    assert (r.edits, r.n_reference) == (3, 4) and r.rate == 0.75
    assert r.interval.low <= r.rate <= r.interval.high


def test_bootstrap_edges():
    one = bootstrap_interval([2], [4])
    assert one.low == one.high == 0.5  # one sentence: every draw is that sentence
    perfect = bootstrap_interval([0, 0, 0], [3, 5, 2])
    assert perfect.low == perfect.high == 0.0
    assert all(math.isnan(v) for v in bootstrap_interval([], []).to_list())
    assert all(math.isnan(v) for v in bootstrap_interval([1], [0]).to_list())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 8)), min_size=2, max_size=30))
def test_the_interval_brackets_plausible_rates(pairs):
    edits, lengths = zip(*pairs, strict=False)
    interval = bootstrap_interval(edits, lengths, n_resamples=300)
    per_sentence = np.array(edits) / np.array(lengths)
    # a resampled ratio of sums lies between the smallest and largest sentence rate
    assert per_sentence.min() - 1e-12 <= interval.low <= interval.high <= per_sentence.max() + 1e-12
    assert bootstrap_interval(edits, lengths, n_resamples=300) == interval  # seeded


def test_a_wider_level_gives_a_wider_interval():
    rng = np.random.default_rng(1)
    edits, lengths = rng.integers(0, 5, 200), rng.integers(3, 12, 200)
    narrow = bootstrap_interval(edits, lengths, level=0.5)
    wide = bootstrap_interval(edits, lengths, level=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        rate_with_interval([["a"], ["b"]], [["a"]])


def test_a_paired_change_counts_the_edits_it_saves_over_the_reference_words():
    refs = [["the", "cat", "sat"], ["hello", "there"]]
    before = [["the", "bat", "sat"], ["yellow"]]  # 1 + 2 edits of 5 words
    after = [["the", "cat", "sat"], ["yellow"]]  # 0 + 2
    change = paired_change(refs, before, after)
    assert (change.before, change.after) == (0.6, 0.4)
    assert math.isclose(change.change, -0.2) and math.isclose(change.relative, -1 / 3)
    assert change.interval.low <= change.change <= change.interval.high <= 0.0
    same = paired_change(refs, before, before)
    assert same.change == same.interval.low == same.interval.high == 0.0
    assert all(math.isnan(v) for v in paired_change([], [], []).interval.to_list())
    with pytest.raises(ValueError, match="2 references, 2 and 1 hypotheses"):
        paired_change(refs, before, after[:1])


def test_the_paired_interval_is_narrower_than_the_rates_own():
    # a change that fixes one word in a fifth of 200 sentences of uneven difficulty
    rng = np.random.default_rng(2)
    refs = [["w"] * int(n) for n in rng.integers(4, 12, 200)]
    cuts = rng.integers(0, 4, 200)
    before = [r[: len(r) - int(k)] for r, k in zip(refs, cuts, strict=True)]
    after = [r[: len(h) + 1] if k % 5 == 0 and len(h) < len(r) else h
             for k, (r, h) in enumerate(zip(refs, before, strict=True))]  # fmt: skip
    change = paired_change(refs, before, after)
    own = rate_with_interval(refs, before).interval
    assert change.change < 0 and change.interval.high < 0  # clearly fewer errors
    width = change.interval.high - change.interval.low
    assert width < (own.high - own.low) / 2
