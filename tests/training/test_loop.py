import json
import math

import pytest
import torch

from brain2text.config import load_run
from brain2text.errors import DataError, TrainingError
from brain2text.model.gru import GRUDecoder
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train
from tests.conftest import RUNS, tiny_overrides


def test_tiny_run_writes_metrics_and_checkpoints(prepared_dir, tmp_path):
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    outcome = train(config, tmp_path / "run", quiet=True)
    rows = read_metrics(tmp_path / "run")
    steps = [r for r in rows if "train/loss" in r]
    evals = [r for r in rows if "val/per" in r]
    assert [r["step"] for r in steps] == list(range(6))
    assert [r["step"] for r in evals] == [2, 5]
    for key in ("lr", "grad_norm", "skipped_steps", "time_per_batch", "samples_per_s"):
        assert all(key in r for r in steps)
    assert all(math.isfinite(r["train/loss"]) for r in steps)
    assert any(k.startswith("val/per/t12.") for k in evals[0])
    assert outcome.status == "finished" and outcome.last_step == 5
    assert outcome.best.per == min(r["val/per"] for r in evals)
    assert outcome.best.step == min(evals, key=lambda r: r["val/per"])["step"]
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["best"] == {"per": outcome.best.per, "step": outcome.best.step, "split": "val"}
    # one thread, subnormals flushed (train.flush_denormals, on by default)
    assert record["cpu"] == {"threads": 1, "flush_denormals": True, "denormals_flushed": True}
    assert not (tmp_path / "run" / "report").exists()  # the CLI writes it, not training


def test_a_failing_report_only_warns(prepared_dir, tmp_path, monkeypatch, capsys):
    import brain2text.reports.report
    from brain2text.cli import main

    def broken(run_dir):
        raise RuntimeError("no display\nat all")

    monkeypatch.setattr(brain2text.reports.report, "write_report", broken)
    args = tiny_overrides(prepared_dir, **{"train.n_batch": 2, "train.eval_every": 2})
    assert (
        main(
            [
                "train",
                str(RUNS / "run13_cpu_demo.yaml"),
                *args,
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"
    err = capsys.readouterr().err
    assert "warning: no run report (RuntimeError: no display at all)" in err


def test_same_run_file_same_metrics_at_two_threads(prepared_dir, tmp_path):
    # two threads take the parallel kernels (reductions, the per-day layer's backward): the
    # two runs must still write the same metrics.jsonl, timings aside, augmentation and
    # dropout on, subnormal floats flushed
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(
            prepared_dir,
            **{
                "train.n_batch": 12,
                "train.eval_every": 6,
                "train.threads": 2,
                "model.n_layers": 2,
                "train.ema_decay": 0.9,
            },
        ),
    )
    assert config.augment.white_noise_sd > 0 and config.model.dropout > 0
    assert config.train.flush_denormals  # reproducible with subnormals flushed
    train(config, tmp_path / "a", quiet=True)
    train(config, tmp_path / "b", quiet=True)
    timing = {"time_per_batch", "samples_per_s"}
    rows = [
        [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(tmp_path / d)]
        for d in "ab"
    ]
    assert len(rows[0]) == 12 + 2 and rows[0] == rows[1]


def test_nonfinite_steps_are_reported_skipped_and_stop_the_run(prepared_dir, tmp_path, capsys):
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(
            prepared_dir,
            **{
                "optim.max_lr": 1e30,
                "optim.grad_clip_norm": "null",
                "optim.schedule": "constant",
                "train.max_nonfinite_in_a_row": 2,
                "train.n_batch": 20,
                "train.eval_every": 20,
            },
        ),
    )
    with pytest.raises(TrainingError, match=r"step \d+: 2 non-finite steps in a row"):
        train(config, tmp_path / "run", quiet=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "step skipped" in log
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()


def test_existing_run_folder_is_not_overwritten(prepared_dir, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep me")
    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    with pytest.raises(DataError, match="run folder exists"):
        train(config, tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "keep me"


def test_trials_too_short_for_the_kernel_error_or_skip(prepared_dir, tmp_path):
    over = tiny_overrides(prepared_dir, **{"model.kernel_len": 5000})
    with pytest.raises(
        DataError, match=r"trial \d+: \d+ bins is shorter than model.kernel_len=5000"
    ):
        train(load_run(RUNS / "run13_cpu_demo.yaml", over), tmp_path / "a", quiet=True)
    assert not (tmp_path / "a").exists()  # nothing written before the data checks pass
    # a stride so coarse that the longer phoneme sequences no longer fit: skipped and reported
    over = tiny_overrides(prepared_dir, **{"model.stride_len": 10, "data.on_invalid_trial": "skip"})
    train(load_run(RUNS / "run13_cpu_demo.yaml", over), tmp_path / "b", quiet=True)
    log = (tmp_path / "b" / "train.log").read_text()
    assert "skipped" in log and "output frames" in log


def test_full_run13_config_builds_and_trains_one_step_on_cpu():
    """The full 5x1024 bidirectional model, one step of training's own train_step (augmented,
    clipped at 10) on a batch of 2, then the schedule's step."""
    from brain2text.data.batches import Batch
    from brain2text.distributed import Dist
    from brain2text.training.optim import build_optimizer, build_scheduler
    from brain2text.training.step import Learner, StepOptions, build_scaler, train_step

    config = load_run(RUNS / "run13_onecycle_safe.yaml")
    assert config.model.n_units == 1024 and config.model.n_layers == 5
    torch.manual_seed(0)
    model = GRUDecoder(config.model, n_days=24)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, config.train.n_batch)
    cpu = torch.device("cpu")
    learner = Learner(
        model,
        model,
        optimizer,
        build_scaler(config, cpu),
        StepOptions.of_run(config),
        torch.Generator().manual_seed(0),
        None,
        Dist(),
    )
    batch = Batch(
        torch.randn(2, 120, 256),
        torch.tensor([120, 100]),
        torch.randint(1, 41, (2, 10)),
        torch.tensor([10, 8]),
        torch.tensor([0, 23]),
        torch.tensor([0, 1]),
    )
    before = model.readout.weight.detach().clone()
    model.train()
    result = train_step(learner, batch)
    scheduler.step()
    assert result.problem is None and math.isfinite(result.loss)
    assert math.isfinite(result.grad_norm) and result.grad_norm > 0
    assert not torch.equal(before, model.readout.weight)
    assert optimizer.param_groups[0]["lr"] > 0.0004  # warming up


def test_bf16_autocast_training_is_close_to_fp32(prepared_dir, tmp_path):
    """Two batches and an evaluation with bf16 autocast on the CPU against the same run in
    fp32: every training loss and the validation loss within 1e-3 (relative), the PER within
    0.02; not the very same numbers (the autocast ran)."""
    losses, evals = {}, {}
    for amp in ("false", "true"):
        over = tiny_overrides(
            prepared_dir,
            **{
                "train.use_amp": amp,
                "train.amp_dtype": "bf16",
                "train.n_batch": 2,
                "train.eval_every": 2,
            },
        )
        outcome = train(load_run(RUNS / "run13_cpu_demo.yaml", over), tmp_path / amp, quiet=True)
        assert math.isfinite(outcome.best.per)
        rows = read_metrics(tmp_path / amp)
        losses[amp] = [r["train/loss"] for r in rows if "train/loss" in r]
        (evals[amp],) = [r for r in rows if "val/per" in r]
    assert len(losses["true"]) == 2
    assert losses["true"] == pytest.approx(losses["false"], rel=1e-3)
    assert losses["true"] != losses["false"]
    assert evals["true"]["val/loss"] == pytest.approx(evals["false"]["val/loss"], rel=1e-3)
    assert evals["true"]["val/per"] == pytest.approx(evals["false"]["val/per"], abs=0.02)


@pytest.mark.slow
def test_compiled_training_matches_eager(prepared_dir, tmp_path):
    """train.compile: the same losses as eager mode (one GRU layer: no dropout draws, which
    compiled code makes with its own generator)."""
    overrides = tiny_overrides(prepared_dir, **{"train.n_batch": 3, "train.eval_every": 3})
    eager = load_run(RUNS / "run13_cpu_demo.yaml", overrides)
    compiled = load_run(RUNS / "run13_cpu_demo.yaml", [*overrides, "train.compile=true"])
    try:
        train(eager, tmp_path / "eager", quiet=True)
        train(compiled, tmp_path / "compiled", quiet=True)
    finally:
        torch._dynamo.reset()
    losses = [
        [r["train/loss"] for r in read_metrics(tmp_path / name) if "train/loss" in r]
        for name in ("eager", "compiled")
    ]
    assert len(losses[0]) == 3 and losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert "compiled with torch.compile" in (tmp_path / "compiled" / "train.log").read_text()


def test_on_evaluation_true_prunes_the_run_after_that_evaluation(prepared_dir, tmp_path):
    from brain2text.runs.checkpoint import load_checkpoint
    from brain2text.training.loop import PRUNED

    config = load_run(
        RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir, **{"train.n_batch": 12})
    )
    seen = []

    def prune_at_second(evaluation) -> bool:
        seen.append((evaluation.step, evaluation.split, evaluation.weights))
        return len(seen) == 2

    outcome = train(config, tmp_path / "run", quiet=True, on_evaluation=prune_at_second)
    assert outcome.status == PRUNED and outcome.last_step == 5
    assert seen == [(2, "val", "raw"), (5, "val", "raw")]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "pruned" and record["pruned"] == {"step": 5}
    assert max(r["step"] for r in read_metrics(tmp_path / "run")) == 5
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt").step == 5


def test_the_last_evaluation_is_reported_but_prunes_nothing(prepared_dir, tmp_path):
    from brain2text.training.loop import FINISHED

    config = load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared_dir))
    steps = []
    outcome = train(
        config,
        tmp_path / "run",
        quiet=True,
        on_evaluation=lambda e: steps.append(e.step) or e.step == 5,
    )
    assert outcome.status == FINISHED and steps == [2, 5]
