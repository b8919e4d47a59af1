"""End to end through the real command line, as a user would run it."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import RUNS, tiny_overrides

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def brain2text(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "brain2text", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"brain2text {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


@pytest.mark.slow
def test_synth_prepare_train_evaluate(tmp_path):
    raw, prepared, run = tmp_path / "raw", tmp_path / "prepared", tmp_path / "run"
    brain2text(
        "synth",
        raw,
        "--days",
        2,
        "--train-per-day",
        16,
        "--test-per-day",
        4,
        "--holdout-per-day",
        4,
        "--seed",
        3,
        "--quiet",
    )
    assert sorted(p.name for p in (raw / "train").iterdir()) == [
        "t12.2022.04.28.mat",
        "t12.2022.05.05.mat",
    ]
    brain2text("prepare", raw, prepared, "--quiet")
    out = brain2text(
        "train", RUNS / "run13_cpu_demo.yaml", *tiny_overrides(prepared), "--out", run, "--quiet"
    )
    assert "best val PER" in out.stdout
    out = brain2text("evaluate", run, "--split", "test")
    summary = json.loads((run / "eval" / "test" / "summary.json").read_text())
    assert {"per", "n_sentences", "n_phonemes", "edit_distance", "per_day"} <= summary.keys()
    assert summary["n_sentences"] == 8 and 0 <= summary["per"]
    assert summary["per"] == pytest.approx(summary["edit_distance"] / summary["n_phonemes"])
    rows = [
        json.loads(line)
        for line in (run / "eval" / "test" / "hypotheses.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 8 and all(r["ref"] for r in rows)
    assert "most frequent errors" in (run / "eval" / "test" / "errors.txt").read_text()
    brain2text("evaluate", run, "--split", "competition", "--checkpoint", "last")
    decoded = (run / "eval" / "competition" / "decoded.txt").read_text().splitlines()
    assert len(decoded) == 8
    brain2text("evaluate", run, "--split", "competition", "--answers", raw / "holdout_answers.json")
    assert "per" in json.loads((run / "eval" / "competition" / "summary.json").read_text())


def test_config_shows_derived_lrs():
    out = brain2text("config", RUNS / "run13_onecycle_safe.yaml").stdout
    assert "lr at batch 0: 0.0004" in out
    assert "peak lr: 0.01 at batch 999" in out
    assert "lr at the last batch (9999): 4e-07" in out


def test_errors_are_one_line(tmp_path):
    for args in (
        ["config", RUNS / "baseline.yaml", "train.n_batchx=1"],
        ["prepare", tmp_path / "missing", tmp_path / "out"],
        ["evaluate", tmp_path / "norun"],
    ):
        result = brain2text(*args, check=False)
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_truncated_recording_gives_one_line_and_no_output(raw_dir, tmp_path):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(raw_dir, raw)
    victim = sorted((raw / "train").iterdir())[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    result = brain2text("prepare", raw, tmp_path / "prepared", "--quiet", check=False)
    assert result.returncode == 2 and victim.name in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "prepared").exists()


def test_a_config_torch_cannot_run_is_refused_up_front_in_config_and_train(tmp_path):
    onecycle = [RUNS / "run13_onecycle_safe.yaml", "train.n_batch=10", "train.eval_every=5"]
    for args in (["config", *onecycle], ["train", *onecycle, "--out", tmp_path / "run"]):
        result = brain2text(*args, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "optim.pct_start=0.1 x train.n_batch=10" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "RUN", "--out", "DIR", "train.n_batch=8", "--quiet", "model.n_units=16"],
        ["train", "--out", "DIR", "RUN", "train.n_batch=8", "model.n_units=16", "--quiet"],
        ["train", "RUN", "train.n_batch=8", "--quiet", "--out", "DIR", "model.n_units=16"],
    ],
)
def test_overrides_are_taken_anywhere_on_the_line(argv):
    from brain2text.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (str(args.run_file), str(args.out), args.quiet) == ("RUN", "DIR", True)
    assert args.overrides == ["train.n_batch=8", "model.n_units=16"]


def test_every_command_with_overrides_takes_them_after_its_options():
    from brain2text.cli import build_parser

    parser = build_parser()
    sweep = parser.parse_args(
        ["sweep", "RUN", "--grid", "optim.max_lr=0.1,0.2", "--grid", "train.seed=0,1", "a.b=1"]
    )
    assert sweep.grid == ["optim.max_lr=0.1,0.2", "train.seed=0,1"] and sweep.overrides == ["a.b=1"]
    config = parser.parse_args(["config", "RUN", "--list", "a.b=1"])
    assert config.list and config.overrides == ["a.b=1"]
    lr_find = parser.parse_args(["lr-find", "RUN", "--batches", "5", "a.b=1"])
    assert (lr_find.batches, lr_find.overrides) == (5, ["a.b=1"])
    adapt = parser.parse_args(["adapt", "RUN_DIR", "--day", "D", "REC.mat", "adapt.steps=3"])
    assert (str(adapt.recording), adapt.day, adapt.overrides) == ("REC.mat", "D", ["adapt.steps=3"])
    demo = parser.parse_args(["demo", "--fresh", "train.n_batch=20", "--days", "2"])
    assert demo.fresh and demo.overrides == ["train.n_batch=20"]
    resume = parser.parse_args(["train", "--resume", "RUN_DIR"])
    assert (resume.run_file, resume.overrides) == (None, [])
    lm = parser.parse_args(["lm", "tune", "RUN_DIR", "--lm", "LM", "--beam", "4"])
    assert (lm.lm_command, str(lm.run_dir), lm.beam) == ("tune", "RUN_DIR", 4)


def test_train_run_out_dir_then_overrides(prepared_dir, tmp_path):
    from brain2text.cli import main

    run = tmp_path / "run"
    argv = ["train", str(RUNS / "run13_cpu_demo.yaml"), "--out", str(run), "--quiet"]
    assert main([*argv, *tiny_overrides(prepared_dir, **{"train.n_batch": 3})]) == 0
    config = (run / "config.yaml").read_text()
    assert "n_batch: 3" in config and "n_units: 16" in config


def test_the_readmes_sweep_order(prepared_dir, tmp_path, capsys):
    from brain2text.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", str(RUNS / "run13_cpu_demo.yaml"), "--grid", "train.seed=0", "--out", str(out)]
    assert main([*argv, *tiny_overrides(prepared_dir, **{"train.n_batch": 3}), "--quiet"]) == 0
    assert "n_batch: 3" in (out / "seed=0" / "config.yaml").read_text()
    assert "sweep page" in capsys.readouterr().out
