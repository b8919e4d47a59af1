"""The n-best rescoring formula at its edges: alpha 0 and 1, gating, duplicates, empty lists,
ties, and the n-best oracle."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from brain2text.decoding.beam import WordHypothesis
from brain2text.errors import ConfigError
from brain2text.evaluation.rescoring import (
    LlmRescorer,
    RescoreOptions,
    nbest_oracle,
    rescore_nbest,
    rescore_totals,
)


def hyp(text: str, am: float, ngram: float, score: float | None = None) -> WordHypothesis:
    words = tuple(text.split())
    return WordHypothesis(words, (), am + ngram if score is None else score, am=am, ngram=ngram)


class FakeScorer:
    name = "fake"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def score(self, sentences):
        self.calls.append(list(sentences))
        return np.array([self.table[s] for s in sentences])


def test_the_formula():
    totals = rescore_totals([-10, -12], [-5, -3], [-20, -8], [2, 2], RescoreOptions(0.5, 0.5))
    assert totals == pytest.approx([0.5 * -10 + 0.5 * -5 + 0.5 * -20, -6 - 1.5 - 4])


def test_alpha_zero_keeps_the_ngram_order_and_one_follows_the_llm():
    hyps = [hyp("a b", -10, -2), hyp("a c", -11, -2)]
    llm = {"a b": -30.0, "a c": -5.0}
    first = rescore_nbest(hyps, llm, RescoreOptions(alpha=0.0, acoustic_scale=1.0))
    assert [h.words for h in first] == [("a", "b"), ("a", "c")]
    last = rescore_nbest(hyps, llm, RescoreOptions(alpha=1.0, acoustic_scale=0.0))
    assert [h.words for h in last] == [("a", "c"), ("a", "b")]
    assert last[0].llm == -5.0 and last[0].total == pytest.approx(-5.0)
    assert last[0].score == hyps[1].score  # the first pass's score is kept


def test_the_gate_keeps_the_llm_out_of_improbable_trials():
    hyps = [hyp("x y", -10, -20), hyp("x z", -10.5, -20)]  # -10 per word
    llm = {"x y": -40.0, "x z": -1.0}
    open_gate = rescore_nbest(hyps, llm, RescoreOptions(alpha=0.9, acoustic_scale=1.0))
    assert open_gate[0].words == ("x", "z")
    gated = rescore_nbest(hyps, llm, RescoreOptions(alpha=0.9, acoustic_scale=1.0, gate=-5.0))
    assert gated[0].words == ("x", "y")
    assert gated[0].total == pytest.approx(-10 - 20)
    kept = rescore_nbest(hyps, llm, RescoreOptions(alpha=0.9, acoustic_scale=1.0, gate=-11.0))
    assert kept[0].words == ("x", "z")


def test_duplicates_are_scored_once_and_empty_lists_stay_empty():
    scorer = FakeScorer({"a": -1.0, "b": -2.0})
    rescorer = LlmRescorer(scorer, RescoreOptions())
    out = rescorer([hyp("a", -1, -1), hyp("b", -2, -1), hyp("a", -3, -1)], np.zeros((1, 41)))
    assert scorer.calls == [["a", "b"]]
    assert len(out) == 2 and out[0].words == ("a",)
    assert rescorer([], np.zeros((1, 41))) == []
    single = rescorer([hyp("b", -2, -1)], np.zeros((1, 41)))
    assert single[0].llm == -2.0


def test_the_empty_sentence_keeps_its_own_scores():
    # an empty hypothesis must not shift the scores of the ones after it
    scorer = FakeScorer({"": 0.0, "a b": -3.0, "c": -1.0})
    out = LlmRescorer(scorer, RescoreOptions(alpha=1.0, acoustic_scale=0.0))(
        [hyp("", -5, -1), hyp("a b", -6, -2), hyp("c", -7, -3)], np.zeros((1, 41))
    )
    assert {h.words: h.llm for h in out} == {(): 0.0, ("a", "b"): -3.0, ("c",): -1.0}


def test_ties_keep_the_first_pass_order():
    hyps = [hyp("p", -1, -1), hyp("q", -1, -1)]
    out = rescore_nbest(hyps, {"p": -2.0, "q": -2.0}, RescoreOptions())
    assert [h.words for h in out] == [("p",), ("q",)]


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(alpha=1.5), "--alpha 1.5: must be between 0 and 1"),
        (dict(alpha=-0.1), "--alpha -0.1"),
        (dict(acoustic_scale=-1.0), "--acoustic-scale -1.0"),
        (dict(gate=math.nan), "--llm-gate nan"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        RescoreOptions(**options)


@given(
    st.lists(
        st.tuples(st.floats(-50, 0), st.floats(-50, 0), st.floats(-50, 0)), min_size=1, max_size=6
    ),
    st.floats(0, 1),
    st.floats(0, 2),
)
def test_the_best_total_wins(scores, alpha, scale):
    hyps = [hyp(f"w{i}", am, ng) for i, (am, ng, _) in enumerate(scores)]
    llm = {f"w{i}": s for i, (_, _, s) in enumerate(scores)}
    out = rescore_nbest(hyps, llm, RescoreOptions(alpha, scale))
    totals = [scale * am + (1 - alpha) * ng + alpha * s for am, ng, s in scores]
    assert out[0].total == pytest.approx(max(totals))
    assert [h.total for h in out] == sorted((h.total for h in out), reverse=True)


def test_the_oracle_picks_the_fewest_edits():
    refs = [["a", "b", "c"], ["d"], ["e", "f"]]
    nbests = [
        [hyp("a x c", 0, 0), hyp("a b c", 0, 0)],
        [],
        [hyp("e", 0, 0), hyp("g h", 0, 0)],
    ]
    oracle = nbest_oracle(refs, nbests)
    assert oracle.choices == [1, -1, 0]
    assert oracle.edits == 0 + 1 + 1 and oracle.n_reference == 6
    assert oracle.wer == pytest.approx(2 / 6)
