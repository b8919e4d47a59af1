"""Ensembles merged by their language models: the n-best merge (pooled candidates scored by every
member) and the generative merge (an LLM writes the sentence, constrained to lexicon words)."""

import json
import math
import time

import numpy as np
import pytest
import torch

from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.decoding.beam import WordHypothesis
from brain2text.decoding.lm import build_lm, open_lm
from brain2text.evaluation.ensemble import evaluate_ensemble
from brain2text.evaluation.members import MemberWords, decode_members, load_members
from brain2text.evaluation.merge import correction_examples, merged_words
from brain2text.evaluation.merge_scores import (
    CORRECTION_CUE,
    MergeWeights,
    correction_prompt,
    ctc_log_likelihoods,
    merge_nbest,
)
from brain2text.evaluation.search import DecodedWords
from brain2text.evaluation.summary import read_summary
from brain2text.evaluation.words import normalize_words
from brain2text.phonemes import to_ids
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides

pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")

LN10 = math.log(10.0)
BEAM = ["--beam", "8", "--nbest", "4"]


@pytest.fixture(scope="module")
def setup(prepared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    for name, seed in (("a", 1), ("b", 2)):
        config = load_run(
            RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir, **{"train.seed": seed})
        )
        train(config, root / name, quiet=True)
    train_split = open_prepared(prepared_dir).split("train")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, root / "lm")
    return root


@pytest.fixture(scope="module")
def merged_nbest(setup):
    out = setup / "ens"
    args = ["evaluate", str(setup / "a"), str(setup / "b"), "--ensemble", "--out", str(out)]
    assert main([*args, "--lm", str(setup / "lm"), *BEAM, "--merge", "nbest"]) == 0
    return out / "eval"


def _rows(folder):
    return [json.loads(r) for r in (folder / "hypotheses.jsonl").read_text().splitlines()]


def test_the_ctc_likelihood_of_a_spelling_sums_its_alignments():
    probs = torch.rand(2, 41).softmax(-1).double()
    log_probs = probs.log().numpy()
    blank, five = probs[:, 0], probs[:, 5]
    # "5" in two frames: 5 5, - 5, 5 -
    expected = math.log(five[0] * five[1] + blank[0] * five[1] + five[0] * blank[1])
    got = ctc_log_likelihoods(log_probs, [(5,), (5, 5, 5), ()])
    assert got[0] == pytest.approx(expected, abs=1e-9)
    assert got[1] == -math.inf  # three labels cannot fit in two frames
    assert got[2] == pytest.approx(float(blank.log().sum()), abs=1e-9)


def test_merge_nbest_scores_every_pooled_candidate_with_every_member():
    rng = np.random.default_rng(0)
    members = [torch.randn(12, 41, dtype=torch.float64).log_softmax(-1).numpy() for _ in range(2)]

    def hyp(words, phonemes, ngram):
        return WordHypothesis(
            tuple(words), tuple(phonemes), float(rng.normal()), am=0.0, ngram=ngram
        )

    a = [hyp(["x"], [3, 40], -2.0), hyp(["y", "z"], [4, 40, 6, 40], -5.0)]
    b = [hyp(["y", "z"], [4, 40, 7, 40], -5.0), hyp(["w"], [9, 40], -1.0)]
    weights = MergeWeights(lm_weight=2.0, word_score=0.5)
    merged = merge_nbest([a, b], members, weights)
    assert sorted(h.words for h in merged) == [("w",), ("x",), ("y", "z")]
    yz = next(h for h in merged if h.words == ("y", "z"))
    assert yz.phonemes == (4, 40, 6, 40)  # the first proposer's path
    for h in merged:
        direct = [
            -torch.nn.functional.ctc_loss(
                torch.from_numpy(m)[:, None],
                torch.tensor([h.phonemes]),
                [12],
                [len(h.phonemes)],
                reduction="none",
            ).item()
            for m in members
        ]
        assert h.am == pytest.approx(np.mean(direct), abs=1e-9)
        assert h.total == pytest.approx(h.am + 2.0 * h.ngram / LN10 + 0.5 * len(h.words))
    assert [h.total for h in merged] == sorted((h.total for h in merged), reverse=True)


def test_merged_trials_times_include_the_llm_time():
    class SlowScorer:
        calls = 0

        def score(self, sentences):
            SlowScorer.calls += 1
            time.sleep(0.2)
            return [-float(len(s)) for s in sentences]

    emissions = torch.randn(6, 41, dtype=torch.float64).log_softmax(-1).numpy()
    nbest = [WordHypothesis(("x",), (3, 40), -1.0, am=0.0, ngram=-1.0)]
    member = MemberWords([emissions, emissions], DecodedWords([nbest, nbest], [0.01, 0.01]))
    weights = MergeWeights(lm_weight=2.0, word_score=0.0)
    plain = merged_words([member, member], weights)
    with_llm = merged_words([member, member], weights, SlowScorer())
    assert SlowScorer.calls == 1  # every distinct pooled sentence scored in one call
    assert all(0.02 <= s < 0.1 for s in plain.seconds)  # both members' searches
    assert all(s >= 0.02 + 0.2 / 2 for s in with_llm.seconds)  # the LLM's time, shared


def test_merge_nbest_picks_the_best_pooled_total(setup, merged_nbest):
    summary = read_summary(merged_nbest / "test-merge-nbest")
    average = read_summary(merged_nbest / "test-lm")
    assert summary.merge["method"] == "nbest" and "n-best merge" in summary.combination
    assert summary.merge["logit_average"]["wer"] == average.wer
    assert average.combination.startswith("mean of the members'") and average.merge is None
    weights = summary.merge
    rows = _rows(merged_nbest / "test-merge-nbest")
    assert len(rows) == summary.n_sentences == 15
    targets = load_members([setup / "a", setup / "b"], "test")
    emissions = [d.emissions for d in decode_members(targets)]
    pooled_more = 0
    for k, row in enumerate(rows):
        totals = [
            c["am"]
            + weights["lm_weight"] * c["ngram"] / LN10
            + weights["word_score"] * len(c["text"].split())
            for c in row["nbest"]
        ]
        assert totals == pytest.approx([c["total"] for c in row["nbest"]])
        assert row["hyp"] == row["nbest"][int(np.argmax(totals))]["text"]
        pooled_more += len(row["nbest"]) > 4
        spelling = to_ids(row["phonemes"].split())
        direct = np.mean([ctc_log_likelihoods(e[k], [spelling])[0] for e in emissions])
        assert row["nbest"][0]["am"] == pytest.approx(direct, abs=1e-6)
    assert pooled_more > 0  # the members proposed different sentences


def test_merge_nbest_with_an_llm_adds_its_scores(setup, tiny_llm):
    summary = evaluate_ensemble(
        [setup / "a", setup / "b"],
        out=setup / "ens-llm",
        lm_dir=setup / "lm",
        merge="nbest",
        llm=str(tiny_llm),
        beam_size=8,
        nbest=4,
    )
    from brain2text.evaluation.rescoring import RescoreOptions

    assert summary.merge["llm"]["name"] == str(tiny_llm)
    # the pooled candidates ranked by their own members' scores, against the merge's totals
    assert summary.wer_change == pytest.approx(summary.wer - summary.wer_first_pass)
    options = RescoreOptions()  # the defaults: no rescoring options were given
    for row in _rows(setup / "ens-llm" / "eval" / "test-merge-nbest"):
        totals = [
            options.acoustic_scale * c["am"]
            + (1 - options.alpha) * c["ngram"]
            + options.alpha * c["llm"]
            for c in row["nbest"]
        ]
        assert totals == pytest.approx([c["total"] for c in row["nbest"]])
        assert row["hyp"] == row["nbest"][int(np.argmax(totals))]["text"]


def test_generate_writes_only_lexicon_words(setup, tiny_llm):
    summary = evaluate_ensemble(
        [setup / "a", setup / "b"],
        out=setup / "ens-gen",
        lm_dir=setup / "lm",
        merge="generate",
        llm=str(tiny_llm),
        beam_size=8,
    )
    folder = setup / "ens-gen" / "eval"
    lexicon = set(open_lm(setup / "lm").spellings)
    sentences = (folder / "test-merge-generate" / "decoded.txt").read_text().splitlines()
    assert len(sentences) == summary.n_sentences == 15
    assert all(w in lexicon for s in sentences for w in s.split())
    assert any(sentences)
    assert summary.merge["method"] == "generate" and (folder / "test-lm").is_dir()
    assert summary.merge["logit_average"]["wer"] == read_summary(folder / "test-lm").wer
    row = _rows(folder / "test-merge-generate")[0]
    assert len(row["nbest"]) == 1 and row["nbest"][0]["llm"] is not None
    assert summary.wer_first_pass is None and summary.wer_change is None  # nothing to rank


def test_the_constrained_writer_keeps_to_the_lexicon_and_the_bound(setup, tiny_llm):
    from brain2text.decoding.llm import load_causal_lm
    from brain2text.evaluation.merge_generate import generate_sentence, lexicon_trie

    lm = load_causal_lm(tiny_llm, device="cpu")
    words = sorted(open_lm(setup / "lm").spellings)[:7]
    trie = lexicon_trie(lm.tokenizer, words)
    for bound in (1, 3):
        written = generate_sentence(lm, correction_prompt(["a b"], ["AH SIL"]), trie, bound)
        assert 1 <= len(written) <= bound and set(written) <= set(words)


def test_correction_examples_hold_the_members_candidates(setup, capsys):
    examples = correction_examples([setup / "a", setup / "b"], setup / "lm", splits=("val",))
    tops = []
    for member in ("a", "b"):
        assert (
            main(["evaluate", str(setup / member), "--lm", str(setup / "lm"), "--split", "val"])
            == 0
        )
        tops.append(_rows(setup / member / "eval" / "val-lm"))
    capsys.readouterr()
    assert len(examples) == len(tops[0])
    for example, a, b in zip(examples, tops[0], tops[1], strict=True):
        assert example.target == "".join(" " + w for w in normalize_words(a["text"]))
        lines = example.prompt.splitlines()
        assert lines[-1] == CORRECTION_CUE
        assert lines[1].startswith(f"1. {a['hyp']} | ") and lines[2].startswith(f"2. {b['hyp']} | ")
    assert correction_prompt(["a b", "c"], ["AH SIL", "K SIL"]) == (
        f"candidates:\n1. a b | AH SIL\n2. c | K SIL\n{CORRECTION_CUE}"
    )


def test_merge_options_are_refused_in_one_line(setup, capsys):
    a, b = str(setup / "a"), str(setup / "b")
    cases = [
        ([a, "--lm", str(setup / "lm"), "--merge", "nbest"], "add --ensemble"),
        ([a, b, "--ensemble", "--merge", "nbest"], "give --lm LM_DIR"),
        ([a, b, "--ensemble", "--lm", str(setup / "lm"), "--merge", "generate"], "give --llm"),
    ]
    for args, message in cases:
        out = setup / "refused"
        assert (
            main(
                ["evaluate", *args, "--out", str(out)]
                if "--ensemble" in args
                else ["evaluate", *args]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
        assert not out.exists()
