"""The LR range test: pure maths, a real tiny sweep through the CLI, and ``optim.max_lr_from``."""

import json
import math

import numpy as np
import pytest
from matplotlib.image import imread

from brain2text.cli import main
from brain2text.config import LR_FIND_KEY, load_run
from brain2text.errors import ConfigError, TrainingError
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train
from brain2text.training.lrfind import (
    divergence,
    ema_smooth,
    exponential_lrs,
    lr_find,
    run_sweep,
    suggest,
    summary,
)
from brain2text.training.step import CpuMode
from tests.conftest import RUNS, tiny_overrides

RUN = RUNS / "run13_cpu_demo.yaml"


# ----------------------------------------------------------------------------- pure maths


def test_exponential_lrs_have_a_constant_ratio():
    lrs = exponential_lrs(1e-7, 1.0, 36)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(1.0)
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, (1.0 / 1e-7) ** (1 / 35), rtol=1e-9)


def test_ema_is_bias_corrected():
    np.testing.assert_allclose(ema_smooth([3.0] * 50), 3.0)  # no pull towards 0 at the start
    losses = [1.0, 2.0, 4.0]
    avg, expected = 0.0, []
    for i, x in enumerate(losses):
        avg = 0.98 * avg + 0.02 * x
        expected.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(ema_smooth(losses), expected)
    assert ema_smooth(losses)[0] == 1.0


def test_divergence_rule():
    assert divergence(np.array([2.0, 1.0, 3.9])) is None
    assert "4 x best" in divergence(np.array([2.0, 1.0, 4.1]))
    assert "nan" in divergence(np.array([2.0, math.nan]))


def test_suggestion_is_a_decade_below_the_minimum():
    lrs = exponential_lrs(1e-6, 1.0, 61)
    smoothed = (np.log10(lrs) + 2) ** 2 + 1.0  # minimum at lr 1e-2
    s = suggest(lrs, smoothed)
    assert s.min_loss_lr == pytest.approx(1e-2)
    assert s.max_lr == pytest.approx(1e-3)
    assert lrs[0] <= s.steepest_lr < s.min_loss_lr


def test_no_suggestion_without_improvement():
    lrs = exponential_lrs(1e-6, 1.0, 20)
    with pytest.raises(TrainingError, match="never fell below its first value"):
        suggest(lrs, np.linspace(1.0, 2.0, 20))
    with pytest.raises(TrainingError, match="within a decade of the start"):
        suggest(lrs, np.array([1.0, 0.5, *np.linspace(0.6, 2.0, 18)]))  # min at the 2nd lr


# ----------------------------------------------------------------------------- real sweeps


@pytest.fixture(scope="module")
def sweep(prepared_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lrfind")
    code = main(
        [
            "lr-find",
            str(RUN),
            *tiny_overrides(prepared_dir),
            "--out",
            str(out),
            "--start-lr",
            "1e-4",
            "--end-lr",
            "1",
            "--batches",
            "40",
        ]
    )
    assert code == 0
    return out


def test_sweep_writes_json_and_png(sweep, capsys):
    record = json.loads((sweep / "lr_find.json").read_text())
    lrs = np.array(record["lrs"])
    assert record["batches"] == 40 and record["batches_run"] == len(lrs) == len(record["losses"])
    assert len(record["smoothed"]) == len(lrs)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 1e4 ** (1 / 39), rtol=1e-9)
    value = record[LR_FIND_KEY]
    assert math.isfinite(value) and lrs[0] <= value <= lrs[-1]
    assert value == pytest.approx(float(f"{record['suggestion']['min_loss_lr'] / 10:.3g}"))
    assert record["config"]["name"] == "run13_cpu_demo"
    image = imread(sweep / "lr_find.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.var() > 0


def test_max_lr_from_resolves_and_shows_in_config(sweep, prepared_dir, capsys):
    path = sweep / "lr_find.json"
    value = json.loads(path.read_text())[LR_FIND_KEY]
    overrides = [*tiny_overrides(prepared_dir), f"optim.max_lr_from={path}"]
    config = load_run(RUN, overrides)
    assert config.optim.max_lr == value and config.optim.max_lr_from == str(path)
    capsys.readouterr()
    assert main(["config", str(RUN), *overrides, "train.n_batch=100"]) == 0
    out = capsys.readouterr().out
    assert f"max_lr: {value}" in out and f"suggestion of {path}" in out
    assert f"peak lr: {value:.6g} at batch " in out  # the derived OneCycle schedule uses it
    with pytest.raises(ConfigError, match="conflicts with optim.max_lr_from"):
        load_run(RUN, [*overrides, "optim.max_lr=0.1"])


def test_max_lr_from_bad_files(tmp_path):
    missing = tmp_path / "nowhere" / "lr_find.json"
    with pytest.raises(ConfigError, match=f"optim.max_lr_from: {missing}: file not found"):
        load_run(RUN, [f"optim.max_lr_from={missing}"])
    bad = tmp_path / "lr_find.json"
    bad.write_text(json.dumps({LR_FIND_KEY: None}))
    with pytest.raises(ConfigError, match="not a positive number"):
        load_run(RUN, [f"optim.max_lr_from={bad}"])
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable lr_find.json"):
        load_run(RUN, [f"optim.max_lr_from={bad}"])


def test_sweep_stops_early_when_it_diverges(prepared_dir, tmp_path):
    config = load_run(RUN, tiny_overrides(prepared_dir))
    result = lr_find(config, tmp_path, start_lr=1.0, end_lr=1e5, batches=30)
    assert result.stop_reason != "completed" and result.batches_run < 30
    assert (tmp_path / "lr_find.json").is_file() and (tmp_path / "lr_find.png").is_file()
    # from lr 1 up the loss only rises: no suggestion, and the CLI ends with a one-line error
    assert result.suggestion is None and "no max_lr to suggest" in result.problem
    with pytest.raises(TrainingError, match="no max_lr to suggest"):
        summary(result, tmp_path)


def test_sweep_trains_with_the_loops_batches_and_step(prepared_dir, tmp_path):
    """lr-find's first batch is the training run's first batch, trained by the loop's step with
    its micro-batches: the same loss to the last bit (a batch's loss comes before its update,
    so the LR does not enter it), with and without train.grad_accum."""
    first = {}
    for accum in (1, 2):
        over = {
            "train.grad_accum": accum,
            "train.n_batch": 1,
            "train.eval_every": 1,
            "optim.schedule": "constant",  # one batch is too short for OneCycle's warm-up
        }
        config = load_run(RUN, tiny_overrides(prepared_dir, **over))
        result = run_sweep(config, 1e-4, 1.0, 3)
        assert result.cpu == CpuMode(threads=1, flush_denormals=True, denormals_flushed=True)
        train(config, tmp_path / f"run{accum}", quiet=True)
        (row,) = [r for r in read_metrics(tmp_path / f"run{accum}") if "train/loss" in r]
        assert result.losses[0] == row["train/loss"]
        first[accum] = result.losses[0]
    assert first[1] != first[2]  # two micro-batches draw their dropout masks apart
