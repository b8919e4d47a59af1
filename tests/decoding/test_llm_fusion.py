"""Word-level shallow fusion of a causal LLM into the lexicon beam search."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest

from brain2text.decoding.beam import BeamOptions, WordDecoder
from tests.decoding.test_beam import AMBIGUOUS, ARPA, SPELLINGS, emissions, sentence

pytestmark = pytest.mark.skipif(
    find_spec("flashlight") is None or find_spec("transformers") is None,
    reason="needs flashlight-text and transformers (the lm and llm extras)",
)

TIE = [{"Y": 0.45, "HH": 0.45}, {"EH": 0.45, "AH": 0.45}, *AMBIGUOUS[2:]]


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    path.write_text(ARPA)
    return path


def _causal_lm(folder):
    from brain2text.decoding.llm import load_causal_lm

    return load_causal_lm(folder, device="cpu")


@pytest.fixture(scope="module")
def yellow_lm(tmp_path_factory):
    """A tiny LLM (the lexicon's words) that prefers "yellow world" to "hello world"."""
    from brain2text.decoding.llm import SentenceScorer
    from tests.llm_fixtures import make_tiny_llm

    for seed in range(20):
        folder = make_tiny_llm(
            tmp_path_factory.mktemp("llm") / "tiny", seed=seed, words=sorted(SPELLINGS)
        )
        lm = _causal_lm(folder)
        yellow, hello = SentenceScorer(lm).score(["yellow world", "hello world"])
        if yellow > hello + 1e-3:
            return lm, float(yellow - hello), float(hello)
    raise AssertionError("no seed gives an LLM preferring 'yellow world'")


def _decode(arpa, lm, weight, log_probs, options):
    from brain2text.decoding.llm_fusion import fused_decoder

    fused = fused_decoder(WordDecoder(arpa, SPELLINGS, options), lm, weight)
    return fused, fused.decode(log_probs)


def test_weight_zero_is_the_ngram_search(arpa, yellow_lm):
    options = BeamOptions(lm_weight=1.5, word_score=0.5, nbest=4)
    log_probs = emissions(*TIE)
    plain = WordDecoder(arpa, SPELLINGS, options).decode(log_probs)
    fused, hyps = _decode(arpa, yellow_lm[0], 0.0, log_probs, options)
    assert [h.words for h in hyps] == [h.words for h in plain]
    np.testing.assert_allclose([h.score for h in hyps], [h.score for h in plain], rtol=1e-6)
    np.testing.assert_allclose([h.am for h in hyps], [h.am for h in plain], rtol=1e-6)
    np.testing.assert_allclose([h.ngram for h in hyps], [h.ngram for h in plain], rtol=1e-5)
    assert fused.last_lm.n_forwards == 0


def test_a_heavy_llm_weight_picks_the_llms_sentence(arpa, yellow_lm):
    lm, llm_gap, hello = yellow_lm
    # the n-gram prefers "hello world" by 3.15 (log10): outweigh it twice over; a word score
    # pays back the near-uniform tiny LLM's per-word cost so that sentences keep their length
    weight = 2 * 3.15 * np.log(10) / llm_gap
    word_score = weight * -hello / 2 / np.log(10)
    options = BeamOptions(lm_weight=1.0, word_score=word_score, beam_threshold=1e4)
    log_probs = emissions(*TIE)
    [ngram] = WordDecoder(arpa, SPELLINGS, BeamOptions(lm_weight=1.0)).decode(log_probs)
    _, [fused] = _decode(arpa, lm, weight, log_probs, options)
    assert ngram.words == ("hello", "world")
    assert fused.words == ("yellow", "world")
    assert fused.llm is not None and fused.llm < 0


def test_each_history_runs_the_llm_once_and_decoding_repeats(arpa, yellow_lm):
    from brain2text.decoding.llm import SentenceScorer

    options = BeamOptions(lm_weight=1.0, nbest=3)
    log_probs = sentence("HH AH L OW SIL W ER L D SIL")
    fused, first = _decode(arpa, yellow_lm[0], 1.0, log_probs, options)
    histories = {n.words for n in fused.last_lm.nodes.values() if n.next_log_probs is not None}
    assert fused.last_lm.n_forwards == len(histories)
    again = fused.decode(log_probs)
    assert again == first
    best = first[0]
    [expected] = SentenceScorer(yellow_lm[0]).score([" ".join(best.words)])
    assert best.llm == pytest.approx(expected, abs=1e-4)
