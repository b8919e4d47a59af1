"""EMA weights (train.ema_decay): updated after each optimizer step, evaluated beside the raw
weights, kept in checkpoints and selectable in ``brain2text evaluate --weights``."""

import json
import math

import pytest
import torch
import yaml

from brain2text.cli import main
from brain2text.config import load_run, validate
from brain2text.errors import ConfigError, DataError
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.model.gru import GRUDecoder
from brain2text.reports.criteria import judge
from brain2text.runs.checkpoint import load_checkpoint
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train as train_run
from brain2text.training.step import build_ema
from tests.conftest import RUNS, tiny_overrides


def _steps(decay: float, n: int = 3) -> tuple[GRUDecoder, torch.nn.Module]:
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        ["model.n_units=8", "model.n_layers=1", "model.use_layer_norm=true"],
    )
    torch.manual_seed(0)
    model = GRUDecoder(config.model, n_days=2)
    ema = build_ema(model, decay)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(n):
        x = torch.randn(2, 40, 256)
        loss = model(x, torch.tensor([0, 1])).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update_parameters(model)
    return model, ema.module


def test_ema_with_decay_0_is_the_raw_weights():
    model, averaged = _steps(0.0)
    raw, avg = model.state_dict(), averaged.state_dict()
    assert raw.keys() == avg.keys()
    assert all(torch.equal(raw[k], avg[k]) for k in raw)


def test_ema_with_decay_0_9_lags_the_raw_weights():
    model, averaged = _steps(0.9)
    raw, avg = model.state_dict(), averaged.state_dict()
    assert any(not torch.equal(raw[k], avg[k]) for k in raw if raw[k].is_floating_point())


def test_select_on_ema_needs_ema_decay():
    with pytest.raises(ConfigError, match="train.select_on_ema needs train.ema_decay"):
        load_run(RUNS / "run13_cpu_demo.yaml", ["train.select_on_ema=true"])
    with pytest.raises(ConfigError, match="train.ema_decay"):
        load_run(RUNS / "run13_cpu_demo.yaml", ["train.ema_decay=1.0"])


@pytest.fixture(scope="module")
def ema_run(prepared_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("ema") / "run"
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(prepared_dir, **{"train.ema_decay": 0.9, "train.select_on_ema": "true"}),
    )
    torch.set_num_threads(1)
    return run, train_run(config, run, quiet=True).best


def test_metrics_log_and_checkpoints_carry_the_ema(ema_run):
    run, best = ema_run
    evals = [r for r in read_metrics(run) if "val/per" in r]
    assert [r["step"] for r in evals] == [2, 5]
    assert all(math.isfinite(r["val/per_ema"]) and math.isfinite(r["val/loss_ema"]) for r in evals)
    assert best.evaluation.weights == "ema" and best.per == min(r["val/per_ema"] for r in evals)
    assert "EMA loss" in (run / "train.log").read_text()
    for name in ("best", "last"):
        ckpt = load_checkpoint(run / "checkpoints" / f"{name}.pt")
        assert ckpt.ema is not None and ckpt.model.keys() == ckpt.ema.keys()
        assert any(
            not torch.equal(ckpt.model[k], ckpt.ema[k])
            for k in ckpt.model
            if ckpt.model[k].is_floating_point()
        )
    # the criteria read <split>/per, never the EMA keys or the per-day ones: the verdict's
    # figure names the raw best, which differs from the EMA best and every per-day PER here
    stored = yaml.safe_load((run / "config.yaml").read_text())
    verdicts = judge(validate({**stored, "criteria": {"target_per": 5}}), read_metrics(run))
    raw = min(evals, key=lambda r: r["val/per"])
    others = {
        f"{r[k]:.4f}"
        for r in evals
        for k in r
        if k.startswith("val/per_ema") or k.startswith("val/per/")
    }
    assert f"{raw['val/per']:.4f}" not in others  # else the figure could not tell them apart
    assert [(v.status, v.figure) for v in verdicts] == [
        ("met", f"best val PER {raw['val/per']:.4f} at batch {raw['step']} vs target < 5")
    ]


def test_best_checkpoint_holds_weights_not_the_optimizer(ema_run):
    run, best = ema_run
    best_pt = load_checkpoint(run / "checkpoints" / "best.pt")
    last_pt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert best_pt.ema is not None and {"eval", "eval_ema"} <= best_pt.evaluations.keys()
    assert best_pt.optimizer is None and best_pt.scheduler is None and best_pt.resume is None
    assert None not in (last_pt.optimizer, last_pt.scheduler, last_pt.resume)
    assert best_pt.evaluations["eval_ema"]["per"] == best.per and best_pt.step == best.step
    # weights + EMA against weights + EMA + Adam's two moments: about half the size
    size = lambda name: (run / "checkpoints" / name).stat().st_size  # noqa: E731
    assert size("best.pt") < 0.6 * size("last.pt")


def test_evaluate_with_ema_weights(ema_run):
    run, _ = ema_run
    raw = evaluate_run(run, split_name="test")
    ema = evaluate_run(run, split_name="test", weights="ema")
    assert raw.weights == "raw" and ema.weights == "ema"
    summary = json.loads((run / "eval" / "test-ema" / "summary.json").read_text())
    assert summary["per"] == ema.per
    assert (run / "eval" / "test" / "summary.json").is_file()  # both kept


def test_evaluate_ema_on_a_run_without_ema_is_one_line(prepared_dir, tmp_path, capsys):
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(prepared_dir, **{"train.n_batch": 2, "train.eval_every": 2}),
    )
    train_run(config, tmp_path / "run", quiet=True)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt").ema is None
    with pytest.raises(DataError, match="no EMA weights"):
        evaluate_run(tmp_path / "run", weights="ema")
    assert main(["evaluate", str(tmp_path / "run"), "--weights", "ema"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--weights raw" in err
