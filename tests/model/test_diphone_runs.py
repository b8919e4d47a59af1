"""Diphone runs end to end: dcond_gru_cpu trained, evaluated (PER of the marginal's phonemes),
decoded to words and ensembled with a phoneme run, from the CLI; and the dcond run files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from brain2text.config import load_run
from brain2text.model.diphones import N_DIPHONE_CLASSES, phoneme_log_probs
from brain2text.phonemes import PHONEMES, to_symbols
from brain2text.sections import ModelConfig
from tests.conftest import RUNS, tiny_overrides

# ----------------------------------------------------------------- a diphone run, from the CLI


@pytest.fixture(scope="module")
def runs(prepared_dir, tmp_path_factory):
    """A tiny dcond_gru_cpu run trained by the CLI, and a phoneme run of the same size."""
    from brain2text.cli import main
    from brain2text.training.loop import train

    root = tmp_path_factory.mktemp("diphone-runs")
    argv = ["train", str(RUNS / "dcond_gru_cpu.yaml"), *tiny_overrides(prepared_dir)]
    assert main([*argv, "--out", str(root / "diphone"), "--quiet"]) == 0
    phoneme = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    train(phoneme, root / "phoneme", quiet=True)
    return root


def _rows(folder: Path) -> list[dict]:
    return [json.loads(r) for r in (folder / "hypotheses.jsonl").read_text().splitlines()]


def test_a_diphone_run_trains_with_the_joint_loss(runs):
    from brain2text.runs.runlog import read_metrics

    rows = read_metrics(runs / "diphone")
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) == 6 and all(math.isfinite(v) and v > 0 for v in losses)
    assert [r["val/per"] for r in rows if "val/per" in r]  # evaluated at steps 2 and 5
    best = torch.load(runs / "diphone" / "checkpoints" / "best.pt", weights_only=True)
    assert best["model"]["readout.weight"].shape[0] == N_DIPHONE_CLASSES
    assert best["config"]["model"]["targets"] == "diphone"


def test_evaluate_scores_the_marginal_phonemes_of_a_diphone_run(runs, prepared_dir):
    """PER is a phoneme error rate: the greedy path of the marginal, scored as phonemes."""
    from brain2text.cli import main
    from brain2text.data.dataset import open_prepared
    from brain2text.decoding.greedy import collapse
    from brain2text.evaluation.summary import read_summary
    from brain2text.model.loading import load_model

    assert main(["evaluate", str(runs / "diphone")]) == 0
    folder = runs / "diphone" / "eval" / "test"
    summary, rows = read_summary(folder), _rows(folder)
    assert len(rows) == summary.n_sentences == 15
    edits = sum(r["edit_distance"] for r in rows)
    assert summary.per == edits / sum(len(r["ref"].split()) for r in rows)
    assert all(set(r["hyp"].split()) <= set(PHONEMES) for r in rows)
    # the same hypotheses from the checkpoint's diphone logits, marginalised by hand
    model = load_model(runs / "diphone" / "checkpoints" / "best.pt", torch.device("cpu")).model
    split = open_prepared(prepared_dir).split("test")
    for i, row in enumerate(rows):
        x = torch.from_numpy(split.copy_features(i))[None].float()
        with torch.no_grad():
            _, diphones = model(x, torch.tensor([int(split.day_index[i])]), diphones=True)
        ids = collapse(phoneme_log_probs(diphones)[0].argmax(-1).numpy())
        assert " ".join(to_symbols(list(ids))) == row["hyp"], i


def test_a_diphone_run_decodes_words_with_an_lm(runs, prepared_dir):
    pytest.importorskip("flashlight.lib.text.decoder", reason="the lm extra is not installed")
    from brain2text.cli import main
    from brain2text.data.dataset import open_prepared
    from brain2text.decoding.lm import build_lm
    from brain2text.evaluation.summary import read_summary

    train_split = open_prepared(prepared_dir).split("train")
    corpus = runs / "corpus.txt"
    corpus.write_text("".join(train_split.text(i) + "\n" for i in range(len(train_split))))
    build_lm(corpus, runs / "lm")
    assert main(["evaluate", str(runs / "diphone"), "--lm", str(runs / "lm"), "--beam", "8"]) == 0
    folder = runs / "diphone" / "eval" / "test-lm"
    summary, rows = read_summary(folder), _rows(folder)
    assert summary.wer is not None and 0.0 <= summary.wer and math.isfinite(summary.per)
    assert len(rows) == 15 and any(r["hyp"].strip() for r in rows)


def test_a_diphone_and_a_phoneme_run_ensemble(runs):
    """Both emit phoneme log-probabilities: their ensemble is the mean of the two, scored."""
    from brain2text.cli import main
    from brain2text.evaluation.summary import read_summary

    members = [str(runs / "diphone"), str(runs / "phoneme")]
    out = runs / "mixed"
    assert main(["evaluate", *members, "--ensemble", "--out", str(out)]) == 0
    summary = read_summary(out / "eval" / "test")
    assert summary.ensemble == members and set(summary.members) == set(members)
    assert len(_rows(out / "eval" / "test")) == summary.n_sentences == 15


# ----------------------------------------------------------------------------- the run files


def test_the_run_files_change_only_the_targets_of_their_parents():
    default = ModelConfig().diphone_alpha
    for child, parent in (
        ("dcond_gru", "run13_onecycle_safe"),
        ("dcond_gru_cpu", "run13_cpu_demo"),
    ):
        c, p = load_run(RUNS / f"{child}.yaml"), load_run(RUNS / f"{parent}.yaml")
        assert (c.name, c.parent) == (child, parent)
        assert (c.model.targets, c.model.diphone_alpha) == ("diphone", default)
        assert c.model.model_copy(update={"targets": "phoneme"}) == p.model
        assert (c.data, c.augment, c.optim, c.train) == (p.data, p.augment, p.optim, p.train)


@pytest.mark.slow
def test_the_full_dcond_gru_builds_and_trains_one_step_on_cpu():
    """The full 5 x 1024 bidirectional model with its 1641-class read-out: one step of
    training's own train_step on a batch of 2 short trials."""
    from brain2text.data.batches import Batch
    from brain2text.distributed import Dist
    from brain2text.model.factory import new_model
    from brain2text.training.optim import build_optimizer
    from brain2text.training.step import Learner, StepOptions, build_scaler, train_step

    config = load_run(RUNS / "dcond_gru.yaml")
    torch.manual_seed(0)
    model = new_model(config, n_days=24, n_features=256)
    assert model.readout.out_features == N_DIPHONE_CLASSES
    cpu = torch.device("cpu")
    learner = Learner(
        model,
        model,
        build_optimizer(model, config.optim),
        build_scaler(config, cpu),
        StepOptions.of_run(config),
        torch.Generator().manual_seed(0),
        None,
        Dist(),
    )
    batch = Batch(
        torch.randn(2, 80, 256),
        torch.tensor([80, 64]),
        torch.randint(1, 41, (2, 6)),
        torch.tensor([6, 4]),
        torch.tensor([0, 23]),
        torch.tensor([0, 1]),
    )
    before = model.readout.weight.detach().clone()
    model.train()
    result = train_step(learner, batch, progress=0.5)
    assert result.problem is None and math.isfinite(result.loss) and result.loss > 0
    assert not torch.equal(before, model.readout.weight)
