"""Brain-to-Text '25 end to end through the real CLI: synthetic HDF5 sessions -> prepare ->
train the CPU child of the B2T'25 baseline -> evaluate val (PER per day) -> evaluate test
(submission.csv in the official order) and the checkpoint refusing another feature set."""

from __future__ import annotations

import csv
import json

import pytest

from brain2text.cli import main
from brain2text.config import load_run
from brain2text.data.dataset import open_prepared
from tests.conftest import RUNS

TINY = [
    "model.n_units=16",
    "model.n_layers=1",
    "train.batch_size=8",
    "train.n_batch=6",
    "train.eval_every=3",
    "train.threads=1",
]


@pytest.fixture(scope="module")
def b2t25_prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("b2t25")
    assert (
        main(
            [
                "synth",
                str(root / "raw"),
                "--layout",
                "b2t25",
                "--days",
                "4",
                "--train-per-day",
                "12",
                "--test-per-day",
                "4",
                "--holdout-per-day",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["prepare", str(root / "raw"), str(root / "prep"), "--quiet"]) == 0
    return root


@pytest.mark.slow
def test_b2t25_sessions_train_evaluate_and_make_a_submission(
    b2t25_prepared, prepared_dir, tmp_path, capsys
):
    root = b2t25_prepared
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "b2t25_cpu_demo",
                f"data.path={root / 'prep'}",
                *TINY,
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    log = (run / "train.log").read_text()
    assert "validation on the dataset's own val split (12 trials)" in log
    val = json.loads((run / "metrics.jsonl").read_text().splitlines()[3])  # first evaluation
    assert val["step"] == 2 and set(k for k in val if k.startswith("val/per/")) == {
        f"val/per/{d}" for d in open_prepared(root / "prep").days[1:]
    }  # the days with val

    assert main(["evaluate", str(run), "--split", "val"]) == 0
    summary = json.loads((run / "eval" / "val" / "summary.json").read_text())
    assert summary["n_sentences"] == 12 and len(summary["per_day"]) == 3

    assert main(["evaluate", str(run), "--split", "test"]) == 0
    rows = list(csv.reader((run / "eval" / "test" / "submission.csv").open()))
    decoded = (run / "eval" / "test" / "decoded.jsonl").read_text().splitlines()
    assert rows[0] == ["id", "text"] and [r[0] for r in rows[1:]] == [str(i) for i in range(9)]
    order = [(json.loads(d)["session"], json.loads(d)["trial"]) for d in decoded]
    assert order == sorted(order)  # sessions by date, trials in file order
    assert [r[1] for r in rows[1:]] == [json.loads(d)["hyp"] for d in decoded]

    assert (
        main(
            [
                "evaluate",
                str(run),
                "--split",
                "test",
                "--answers",
                str(root / "raw" / "test_answers.json"),
            ]
        )
        == 0
    )
    assert "test PER" in capsys.readouterr().out

    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "val", "--data", str(prepared_dir)]) == 2
    err = capsys.readouterr().err
    assert "holds 256 features a bin" in err and "reads 512" in err and err.count("\n") == 1


def test_the_b2t25_baseline_spells_out_the_public_recipe():
    c = load_run(RUNS / "b2t25_baseline.yaml")
    m, a, o, t = c.model, c.augment, c.optim, c.train
    assert (m.n_units, m.n_layers, m.dropout, m.bidirectional, m.learnable_h0) == (
        768,
        5,
        0.4,
        False,
        True,
    )
    assert (m.input_dropout, m.use_layer_norm, m.kernel_len, m.stride_len) == (0.2, False, 14, 4)
    assert (m.gaussian_smooth_width, m.smooth_kernel_size) == (2.0, 100)
    assert (a.white_noise_sd, a.constant_offset_sd, a.random_cut) == (1.0, 0.2, 3)
    assert (o.optimizer, tuple(o.betas), o.eps, o.l2_decay) == ("adamw", (0.9, 0.999), 0.1, 1e-3)
    assert (o.schedule, o.max_lr, o.end_lr, o.warmup_batches) == ("warmup_cosine", 5e-3, 1e-4, 1000)
    assert (o.day_max_lr, o.day_end_lr, o.day_weight_decay, o.grad_clip_norm) == (
        5e-3,
        1e-4,
        0.0,
        10.0,
    )
    assert (t.batch_size, t.n_batch, t.days_per_batch, t.eval_every) == (64, 120000, 4, 2000)
    assert (t.use_amp, t.amp_dtype) == (True, "bf16")


def test_run11_run12_run13_form_the_notes_lineage():
    run13 = load_run(RUNS / "run13_onecycle_safe.yaml")
    run12 = load_run(RUNS / "run12_baseline_hybrid.yaml")
    run11 = load_run(RUNS / "run11_plateau_break.yaml")
    assert run13.parent == "run12_baseline_hybrid" and run12.parent == "baseline"
    assert (run12.optim.eps, run12.optim.schedule, run12.optim.max_lr) == (1e-8, "constant", 0.02)
    assert (run12.augment.white_noise_sd, run12.augment.constant_offset_sd) == (0.8, 0.2)
    assert run12.model.use_layer_norm and run12.optim.grad_clip_norm == 1.5
    assert run12.augment.time_mask_prob == run12.augment.freq_mask_prob == 0.1
    o = run11.optim
    assert (o.optimizer, o.max_lr, o.l2_decay, o.schedule) == ("adamw", 8e-4, 1e-4, "plateau")
    assert (o.plateau_patience, o.plateau_factor, o.end_lr, o.grad_clip_norm) == (8, 0.5, 1e-5, 1.5)
    assert run11.augment.white_noise_sd == run11.augment.constant_offset_sd == 0.0
    assert (run11.augment.time_mask_width, run11.augment.freq_mask_width) == (40, 12)
    assert run11.model.use_layer_norm and not run11.train.use_amp


@pytest.mark.slow
def test_run13s_faster_than_is_judged_against_a_run11_child_of_its_size(
    prepared_dir, tmp_path, monkeypatch
):
    from brain2text.reports.criteria import NOT_MEASURABLE, judge
    from brain2text.reports.report import reference_rows
    from brain2text.runs.runlog import read_metrics
    from tests.conftest import tiny_overrides

    monkeypatch.chdir(tmp_path)  # criteria.faster_than.run is runs/run11, from here
    tiny = tiny_overrides(prepared_dir, **{"train.n_batch": 6, "train.eval_every": 2})
    assert main(["train", "run11_cpu_demo", *tiny, "--out", "runs/run11", "--quiet"]) == 0
    assert (
        main(
            [
                "train",
                "run13_cpu_demo",
                *tiny,
                "criteria.faster_than.per=5",
                "--out",
                "runs/run13",
                "--quiet",
            ]
        )
        == 0
    )
    config = load_run(tmp_path / "runs" / "run13" / "config.yaml")
    assert config.criteria.faster_than.run == "runs/run11"
    verdict = next(
        v
        for v in judge(config, read_metrics(tmp_path / "runs" / "run13"), reference_rows(config))
        if v.name == "faster_than"
    )
    assert verdict.status != NOT_MEASURABLE
    assert "vs runs/run11 at batch 1" in verdict.figure
    assert load_run(RUNS / "run11_cpu_demo.yaml").optim.schedule == "plateau"
