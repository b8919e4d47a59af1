import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.evaluation.words import (
    bootstrap_interval,
    normalize_words,
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
