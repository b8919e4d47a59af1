"""brain2text adapt: a day the run never saw gets its own input layer, fitted alone on a few
labelled sentences (or, --unlabelled, on its trials' confident LM decodings); PER before and
after."""

import json
import math
import shutil
import warnings

import pytest
import torch

from brain2text import Decoder
from brain2text.cli import main
from brain2text.data.prepare import prepare
from brain2text.decoding.beam import WordHypothesis
from brain2text.errors import ConfigError, DataError
from brain2text.phonemes import PHONEME_TO_ID
from brain2text.runs.checkpoint import load_checkpoint
from brain2text.training.adapt import adapt
from brain2text.training.adapt_unlabelled import ngram_per_word, passes_gate, pseudo_label
from brain2text.training.state import LatestEval
from tests.conftest import RUNS


@pytest.fixture(scope="module")
def two_day_run(raw_dir, tmp_path_factory):
    """A run trained on the first two days of ``raw_dir``; its third day is held back."""
    root = tmp_path_factory.mktemp("adapt")
    days = sorted(p.name for p in (raw_dir / "train").glob("*.mat"))
    (root / "raw" / "train").mkdir(parents=True)
    for name in days[:2]:
        shutil.copy(raw_dir / "train" / name, root / "raw" / "train" / name)
    prepare(root / "raw", root / "prep", progress=False)
    assert (
        main(
            [
                "train",
                str(RUNS / "run13_cpu_demo.yaml"),
                f"data.path={root / 'prep'}",
                "model.n_units=32",
                "model.n_layers=1",
                "model.kernel_len=8",
                "train.batch_size=8",
                "train.n_batch=60",
                "train.eval_every=30",
                "train.threads=1",
                "--out",
                str(root / "run"),
                "--quiet",
            ]
        )
        == 0
    )
    return root / "run", raw_dir / "train" / days[2], days[2][:-4]


@pytest.mark.slow
def test_adapting_a_held_back_day_lowers_its_per(two_day_run, tmp_path, capsys):
    run, recording, day = two_day_run
    out = tmp_path / "adapted"
    assert (
        main(
            [
                "adapt",
                str(run),
                str(recording),
                "adapt.steps=40",
                "adapt.lr=0.01",
                "adapt.batch_size=4",
                "--day",
                day,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    figures = json.loads((out / "adapt.json").read_text())
    assert figures["per_after"] < figures["per_before"], figures
    assert f"{figures['per_before']:.4f} -> {figures['per_after']:.4f}" in printed
    assert figures["n_fitted"] + figures["n_held_out"] == 20
    dec = Decoder.load(out)
    assert dec.days[-1] == day and len(dec.days) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the adapted run knows the day: no borrowing
        assert main(["decode", str(out), str(recording)]) == 0
    original = Decoder.load(run)
    for name in original.days:  # the other days' layers are untouched
        k = original.days.index(name)
        assert (dec.model.day_weights[k] == original.model.day_weights[k]).all()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_adapt_refuses_a_known_day_and_too_few_sentences(two_day_run, tmp_path, raw_dir):
    run, recording, day = two_day_run
    known = Decoder.load(run).days[0]
    with pytest.raises(ConfigError, match=f"--day {known}: already a training day"):
        adapt(run, recording, known, tmp_path / "a")
    with pytest.raises(DataError, match="too few to fit on some and measure on others"):
        adapt(run, recording, day, tmp_path / "b", overrides=["adapt.held_out_fraction=0.99"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_adapt_refuses_a_run_without_a_layer_per_day(two_day_run, tmp_path):
    run, recording, day = two_day_run
    shared = tmp_path / "shared"
    shutil.copytree(run, shared, ignore=shutil.ignore_patterns("eval"))
    path = shared / "checkpoints" / "best.pt"
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"]["day_layers"] = "shared"
    for key in ("day_weights", "day_biases"):
        payload["model"][key] = payload["model"][key][:1]
    torch.save(payload, path)
    with pytest.raises(ConfigError, match="model.day_layers is shared, so no day has an input"):
        adapt(shared, recording, day, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def _hyp(words, ngram, phonemes=(1, 40)):
    return WordHypothesis(tuple(words), tuple(phonemes), score=0.0, ngram=ngram)


def test_the_gate_keeps_a_decoding_at_or_above_its_score_per_word():
    gate = -2.5
    assert passes_gate([_hyp(["a", "b"], -5.0)], gate)  # exactly -2.5 a word
    assert not passes_gate([_hyp(["a", "b"], -5.0 - 1e-9)], gate)
    assert passes_gate([_hyp(["a"], -0.1), _hyp(["b"], -99.0)], gate)  # the best one decides
    assert not passes_gate([_hyp(["b"], -99.0), _hyp(["a"], -0.1)], gate)
    assert not passes_gate([_hyp([], -0.1)], gate)  # no word: nothing to learn
    assert not passes_gate([_hyp(["a"], math.nan)], gate)  # no n-gram score (a graph)
    assert not passes_gate([], gate)
    assert ngram_per_word(_hyp(["a", "b", "c"], -3.0)) == -1.0


def test_a_pseudo_label_is_the_sentence_as_the_dataset_labels_it():
    sil = PHONEME_TO_ID["SIL"]
    hyp = _hyp(["hi", "ok"], -1.0, (sil, sil, 15, 5, sil, sil, sil, 24, 19, 12, sil))
    assert pseudo_label(hyp) == [15, 5, sil, 24, 19, 12, sil]
    assert pseudo_label(_hyp([], -1.0, (sil,))) == []


def _adapt_argv(run, recording, day, out, *extra):
    return ["adapt", str(run), str(recording), "--day", day, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def day_lm(two_day_run, tmp_path_factory):
    pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
    from brain2text.data.dataset import open_prepared
    from brain2text.decoding.lm import build_lm

    run, _, _ = two_day_run
    root = tmp_path_factory.mktemp("adapt-lm")
    split = open_prepared(run.parent / "prep").split("train")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(split.text(i) + "\n" for i in range(len(split))))
    build_lm(corpus, root / "lm")
    return root / "lm"


@pytest.mark.slow
def test_adapting_without_labels_fits_on_the_trials_the_gate_keeps(
    two_day_run, day_lm, tmp_path, capsys
):
    run, recording, day = two_day_run
    out = tmp_path / "pseudo"
    settings = ["adapt.steps=5", "adapt.batch_size=4", "adapt.pseudo_gate=-50"]
    assert (
        main(_adapt_argv(run, recording, day, out, *settings, "--unlabelled", "--lm", str(day_lm)))
        == 0
    )
    printed = capsys.readouterr().out
    figures = json.loads((out / "adapt.json").read_text())
    assert figures["unlabelled"] is True and figures["gate"] == -50
    assert figures["n_trials"] == 20 and 0 < figures["n_kept"] <= 20
    assert figures["n_scored"] == 20  # the synthetic day's sentences: only for the PER
    assert 0 <= figures["per_before"] and 0 <= figures["per_after"]
    assert (
        f"fitted on the {figures['n_kept']} of 20 trials whose LM decoding passed "
        "adapt.pseudo_gate=-50" in printed
    )
    assert f"{figures['per_before']:.4f} -> {figures['per_after']:.4f}" in printed
    dec, original = Decoder.load(out), Decoder.load(run)
    assert dec.days == [*original.days, day]
    for k in range(len(original.days)):  # the other days' layers are untouched
        assert torch.equal(dec.model.day_weights[k], original.model.day_weights[k])
    assert not torch.equal(dec.model.day_weights[-1], original.model.day_weights[-1])
    held = LatestEval.from_entries(load_checkpoint(out / "checkpoints" / "best.pt").evaluations)
    assert held.raw is not None and held.raw.score.per == figures["per_after"]


@pytest.mark.slow
def test_without_a_confident_trial_or_an_lm_nothing_is_written(
    two_day_run, day_lm, tmp_path, capsys
):
    run, recording, day = two_day_run
    out = tmp_path / "none"
    for extra, message in [
        (
            ["adapt.pseudo_gate=1", "--unlabelled", "--lm", str(day_lm)],
            "no trial's decoding passes adapt.pseudo_gate=1",
        ),
        (["--unlabelled"], "--unlabelled and --lm go together"),
        (["--lm", str(day_lm)], "--unlabelled and --lm go together"),
        (["adapt.pseudo_gate=.inf", "--unlabelled", "--lm", str(day_lm)], "adapt.pseudo_gate"),
    ]:
        assert main(_adapt_argv(run, recording, day, out, *extra)) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
        assert not out.exists()
