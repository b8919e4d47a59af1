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
