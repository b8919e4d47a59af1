"""lm tune --llm: the rescoring grid from one decoding's saved scores, and the leak check of
the validation sentences against the LM's corpus."""

import dataclasses
import json
import math

import numpy as np
import pytest

from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from brain2text.decoding.beam import WordHypothesis
from brain2text.decoding.lm import build_lm, split_sentences
from brain2text.evaluation.evaluate import decode_target, load_target
from brain2text.evaluation.llm_tuning import score_nbests, search_grid
from brain2text.evaluation.metrics import edit_distance, error_rate
from brain2text.evaluation.search import decode_words, word_search
from brain2text.evaluation.tuning import leak_check, tune_lm
from brain2text.evaluation.words import normalize_words
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides

pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
pytest.importorskip("transformers", reason="the llm extra is not installed")

ALPHAS, SCALES, GATES = (0.0, 0.5, 1.0), (0.25, 1.0), (None, -4.0)


class DictScorer:
    """A sentence scorer whose scores are given."""

    name = "dict-scorer"

    def __init__(self, scores):
        self.scores, self.calls = scores, []

    def score(self, sentences):
        self.calls.append(list(sentences))
        return np.array([self.scores[s] for s in sentences], dtype=np.float64)


def _hyp(text, am, ngram):
    return WordHypothesis(tuple(text.split()), (), am + ngram, am=am, ngram=ngram)


# three trials: the first pass's best is wrong in two; the LLM knows better in both, but the
# third trial's words are so unlikely to the n-gram (ln -12 a word) that a gate skips the LLM
NBESTS = [
    [_hyp("the cat sat", -5.0, -6.0), _hyp("the cat sad", -4.0, -9.0)],
    # a duplicate whose acoustic score would win at a high acoustic scale: merged, as the
    # rescorer merges it, into the sentence's first-pass best
    [_hyp("a dog ran", -3.0, -7.0), _hyp("a dug ran", -2.5, -8.5), _hyp("a dog ran", -0.5, -11.0)],
    [_hyp("blue red green", -1.0, -36.0), _hyp("blue read green", -3.0, -37.0)],
]
REFS = [["the", "cat", "sad"], ["a", "dug", "ran"], ["blue", "red", "green"]]
LLM = {
    "the cat sat": -20.0, "the cat sad": -9.0, "a dog ran": -15.0, "a dug ran": -6.0,
    "blue red green": -30.0, "blue read green": -10.0,
}  # fmt: skip


def test_the_grid_reproduces_the_rescorers_choice_at_every_point():
    from brain2text.evaluation.rescoring import LlmRescorer, RescoreOptions

    scorer = DictScorer(LLM)
    scored = score_nbests(NBESTS, REFS, scorer)
    assert scorer.calls == [list(LLM)] and scored.n_scored == 6  # each sentence scored once
    assert [len(a) for a in scored.am] == [2, 2, 2]
    scales = (*SCALES, 4.0)
    tuning = search_grid(scored, scorer.name, 3, ALPHAS, scales, GATES)
    assert [(p.alpha, p.acoustic_scale, p.gate) for p in tuning.table] == [
        (a, s, g) for a in ALPHAS for s in scales for g in GATES
    ]
    wers = [p.wer for p in tuning.table]
    assert len(set(wers)) > 2 and tuning.best == tuning.table[wers.index(min(wers))]
    assert tuning.wer_first_pass == 2 / 9 and tuning.oracle_wer == 0.0
    at = {(p.alpha, p.acoustic_scale, p.gate): p for p in tuning.table}
    assert at[1.0, 0.25, None].wer == 1 / 9 and at[1.0, 0.25, -4.0].wer == 0.0  # the gate
    assert at[0.0, 4.0, None].wer == 0.0 and tuning.best.wer == 0.0
    assert [p.n_gated for p in tuning.table[:2]] == [0, 1]
    for point in tuning.table:
        rescorer = LlmRescorer(
            DictScorer(LLM), RescoreOptions(point.alpha, point.acoustic_scale, point.gate)
        )
        chosen = [rescorer(list(hyps), np.zeros((1, 41)))[0].words for hyps in NBESTS]
        edits = sum(edit_distance(r, list(c)) for r, c in zip(REFS, chosen, strict=True))
        assert math.isclose(edits / 9, point.wer), point


@pytest.fixture(scope="module")
def run_lm_scorer(prepared_dir, tiny_llm, tmp_path_factory):
    from brain2text.decoding.llm import load_scorer

    root = tmp_path_factory.mktemp("llm-tuning")
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    train(config, root / "run", quiet=True)
    train_split = open_prepared(prepared_dir).split("train")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, root / "lm")  # the training transcripts: the validation ones included
    return root / "run", root / "lm", load_scorer(tiny_llm, device="cpu")


def _tune(run, lm, scorer, **extra):
    return tune_lm(
        run,
        lm,
        lm_weights=(1.0, 2.0),
        word_scores=(0.0,),
        beam_size=8,
        llm=scorer,
        llm_nbest=4,
        alphas=ALPHAS,
        acoustic_scales=SCALES,
        gates=GATES,
        device_name="cpu",
        **extra,
    )


def test_the_rescoring_grid_and_its_choice(run_lm_scorer):
    from brain2text.evaluation.rescoring import LlmRescorer, RescoreOptions

    run, lm, scorer = run_lm_scorer
    result = _tune(run, lm, scorer)
    tuning = result.rescoring
    assert tuning is not None and tuning.llm == scorer.name and tuning.nbest == 4
    assert [(p.alpha, p.acoustic_scale, p.gate) for p in tuning.table] == [
        (a, s, g) for a in ALPHAS for s in SCALES for g in GATES
    ]
    wers = [p.wer for p in tuning.table]
    assert tuning.best == tuning.table[wers.index(min(wers))]  # the first lowest point
    assert tuning.oracle_wer <= min(wers) and tuning.oracle_wer <= tuning.wer_first_pass
    record = json.loads(result.path.read_text())
    assert {"lm", "options", "best", "table", "leak_check"} <= set(record)  # n-gram keys kept
    saved = record["rescoring"]
    assert saved["llm"] == scorer.name and saved["nbest"] == 4
    assert (saved["alpha"], saved["acoustic_scale"], saved["gate"]) == (
        tuning.best.alpha,
        tuning.best.acoustic_scale,
        tuning.best.gate,
    )
    assert saved["wer"] == tuning.best.wer and len(saved["table"]) == len(tuning.table)

    # every point's WER is what the n-best rescorer itself picks at that point
    target = load_target(run, "val", device_name="cpu")
    refs = target.trials(None).references
    ref_words = [normalize_words(t) for t in refs.texts]
    emissions = decode_target(target, keep_log_probs=True).emissions
    for point in (tuning.best, tuning.table[-1], tuning.table[0]):
        options = RescoreOptions(point.alpha, point.acoustic_scale, point.gate)
        search = word_search(
            None,
            lm,
            rescorer=LlmRescorer(scorer, options),
            **{**dataclasses.asdict(result.options), "nbest": 4},
        )
        words = decode_words(search, emissions)
        wer = error_rate(ref_words, [normalize_words(s) for s in words.sentences]).rate
        assert math.isclose(wer, point.wer), point
        assert all(h.total is not None and h.llm is not None for hyps in words.nbests for h in hyps)


def test_the_first_pass_the_llm_does_best_with(run_lm_scorer):
    run, lm, scorer = run_lm_scorer
    result = _tune(run, lm, scorer, first_pass_weights=(2.0, 1.0))
    tuning = result.rescoring
    assert tuning is not None and tuning.first_pass is not None
    tried = tuning.first_passes
    assert [f.lm_weight for f in tried][0] == result.best.lm_weight  # the n-gram's best first
    assert sorted(f.lm_weight for f in tried) == [1.0, 2.0]
    assert tuning.first_pass == min(tried, key=lambda f: f.wer) and tuning.best.wer == min(
        f.wer for f in tried
    )
    saved = json.loads(result.path.read_text())["rescoring"]
    assert saved["lm_weight"] == tuning.first_pass.lm_weight and len(saved["first_passes"]) == 2
    # evaluate --llm decodes its first pass at those weights, the n-gram alone at its own
    search = word_search(run, lm, llm=scorer)
    assert search.options["lm_weight"] == tuning.first_pass.lm_weight
    assert search.options["word_score"] == tuning.first_pass.word_score
    assert "the LLM's first pass" in search.options_from
    assert word_search(run, lm).options["lm_weight"] == result.best.lm_weight
    given = word_search(run, lm, llm=scorer, lm_weight=3.0)  # the command line wins
    assert given.options["lm_weight"] == 3.0
    plain = _tune(run, lm, scorer).rescoring  # the n-gram's best alone: the first one tried
    assert plain is not None and plain.first_pass is None and plain.best.wer == tried[0].wer
    assert "lm_weight" not in json.loads(result.path.read_text())["rescoring"]


def test_first_pass_weights_outside_the_grid_or_without_an_llm(run_lm_scorer):
    from brain2text.errors import ConfigError

    run, lm, scorer = run_lm_scorer
    with pytest.raises(ConfigError, match="--first-pass-weights 0.5: each must be one of"):
        _tune(run, lm, scorer, first_pass_weights=(0.5,))
    with pytest.raises(ConfigError, match="give --llm"):
        tune_lm(run, lm, lm_weights=(1.0,), word_scores=(0.0,), first_pass_weights=(1.0,))


def test_the_leak_warning_and_its_cure(run_lm_scorer, tmp_path, capsys):
    run, lm, scorer = run_lm_scorer
    val = split_sentences(run, "val")
    result = _tune(run, lm, scorer)
    out = capsys.readouterr().out
    warning = [line for line in out.splitlines() if "validation sentences are in" in line]
    assert len(warning) == 1 and "lm build --exclude-split val" in warning[0]
    n_val = len([t for t in val if normalize_words(t)])
    assert result.leak is not None and result.leak.n_in_corpus == n_val == result.leak.n_validation
    assert warning[0].startswith(f"warning: {n_val} of {n_val} validation sentences")
    assert json.loads(result.path.read_text())["leak_check"]["n_in_corpus"] == n_val

    corpus = json.loads((lm / "lm.json").read_text())["corpus"]["path"]
    clean = tmp_path / "lm"
    assert (
        main(
            ["lm", "build", "--corpus", corpus, "--out", str(clean)]
            + ["--exclude-split", "val", "--run", str(run)]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            ["lm", "tune", str(run), "--lm", str(clean), "--lm-weights", "1", "--word-scores", "0"]
            + ["--beam", "8", "--device", "cpu", "--llm", str(scorer.lm.source), "--nbest", "3"]
            + ["--alphas", "0,0.5", "--acoustic-scales", "0.5", "--llm-gates", "none,-5"]
            + ["--first-pass-weights", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "validation sentences are in" not in out
    assert "LLM rescoring with" in out and out.count("<- best") == 2
    record = json.loads((run / "lm_tuning.json").read_text())
    assert record["leak_check"] == {"n_validation": n_val, "n_in_corpus": 0, "message": None}
    assert len(record["rescoring"]["table"]) == 4 and record["rescoring"]["nbest"] == 3
    assert record["lm"] == str(clean.resolve())
    assert [f["lm_weight"] for f in record["rescoring"]["first_passes"]] == [1.0]
    assert "first passes tried for the LLM" in out


def test_an_lm_folder_without_hashes_says_no_check_was_made(tmp_path):
    check = leak_check({"corpus": {"path": "x", "sha256": "y"}}, tmp_path, ["a b", "c"])
    assert check.n_in_corpus is None and check.n_validation == 2
    assert "could not be checked" in (check.message or "")


def test_bad_rescoring_grids_are_one_line(run_lm_scorer, capsys):
    run, lm, _ = run_lm_scorer
    base = ["lm", "tune", str(run), "--lm", str(lm), "--llm", "smollm2-135m"]
    for extra, message in (
        (["--alphas", "0.5,1.5"], "--alpha"),
        (["--acoustic-scales=-1"], "--acoustic-scale"),
        (["--llm-gates", "none,x"], "--llm-gates"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
