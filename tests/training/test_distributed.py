"""Training in several processes: DDP on CPU with gloo, launched by torchrun, against one
process on the same global batch."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from brain2text.cli import EXIT_INTERRUPTED
from brain2text.distributed import Dist, check_batch_split, launch_command, pick_device
from brain2text.errors import ConfigError
from brain2text.runs.checkpoint import load_checkpoint
from brain2text.runs.runlog import read_metrics
from tests.conftest import RUNS, tiny_overrides
from tests.training.test_resume import TIMING_KEYS, _last_step, _without_timing

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
RUN_FILE = RUNS / "run13_cpu_demo.yaml"
# every random draw that differs between ranks (augmentation noise, masks, dropout) is off,
# so two processes must compute what one does, up to float summation order
NO_RANDOM_DRAWS = {
    "augment.white_noise_sd": 0,
    "augment.constant_offset_sd": 0,
    "augment.time_mask_prob": 0,
    "augment.freq_mask_prob": 0,
    "model.dropout": 0,
}
LOSS_RTOL = 1e-4  # observed: ~1e-6 (gradient all-reduce order, per-rank CTC reductions)


def _cli_args(*args) -> list[str]:
    return [sys.executable, "-m", "brain2text", *map(str, args)]


def _brain2text(*args) -> subprocess.CompletedProcess:
    return subprocess.run(_cli_args(*args), capture_output=True, text=True, env=ENV)


def _children(pid: int) -> list[int]:
    """Child processes (torchrun starts each rank in a session of its own)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _batch_rows(run_dir) -> list[dict]:
    return [r for r in read_metrics(run_dir) if "train/loss" in r]


def test_one_process_is_rank_0_of_1():
    one = Dist()
    assert not one.enabled and one.is_main and one.share(8) == slice(0, 8)
    assert one.gather({"a": 1}) == [{"a": 1}]
    value = torch.tensor(2.5)
    assert one.mean(value) is value
    assert Dist(rank=1, world_size=4).share(8) == slice(2, 4)
    assert pick_device("cpu") == torch.device("cpu")


def test_batch_split_and_launch_command():
    check_batch_split(8, 2)
    with pytest.raises(ConfigError, match="train.batch_size=6 cannot be split evenly over 4"):
        check_batch_split(6, 4)
    command = launch_command(2, ["train", "x.yaml"])
    assert command[1:] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "brain2text",
        "train",
        "x.yaml",
    ]


@pytest.mark.slow
def test_two_processes_follow_the_loss_trajectory_of_one(prepared_dir, tmp_path):
    overrides = tiny_overrides(
        prepared_dir,
        **NO_RANDOM_DRAWS,
        **{"train.batch_size": 8, "train.n_batch": 8, "train.eval_every": 4},
    )
    one, two = tmp_path / "one", tmp_path / "two"
    single = _brain2text("train", RUN_FILE, *overrides, "--out", one, "--quiet")
    assert single.returncode == 0, single.stderr
    double = _brain2text("train", RUN_FILE, *overrides, "--out", two, "--quiet", "--nproc", 2)
    assert double.returncode == 0, double.stderr
    assert double.stdout.count("best val PER") == 1  # rank 0 alone reports

    rows_one, rows_two = _batch_rows(one), _batch_rows(two)
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two] == list(range(8))
    for a, b in zip(rows_one, rows_two, strict=False):
        assert math.isclose(a["train/loss"], b["train/loss"], rel_tol=LOSS_RTOL), a["step"]
        assert math.isclose(a["grad_norm"], b["grad_norm"], rel_tol=10 * LOSS_RTOL), a["step"]
        assert a["lr"] == b["lr"]
    evals_one = [r for r in read_metrics(one) if "val/per" in r]
    evals_two = [r for r in read_metrics(two) if "val/per" in r]
    assert [r["step"] for r in evals_one] == [r["step"] for r in evals_two] == [3, 7]
    for a, b in zip(evals_one, evals_two, strict=False):
        assert a["val/per"] == pytest.approx(b["val/per"], abs=1e-9)
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=LOSS_RTOL)

    log = (two / "train.log").read_text()
    assert log.count("parameters on cpu x 2 processes (gloo, 4 trials each)") == 1
    record = json.loads((two / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["processes"] == {"world_size": 2, "backend": "gloo"}
    assert (two / "checkpoints" / "best.pt").is_file()


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_exactly(prepared_dir, tmp_path):
    """With augmentation on: every rank's random streams are restored from last.pt."""
    n_batch = 24
    overrides = tiny_overrides(
        prepared_dir,
        **{
            "train.batch_size": 8,
            "train.n_batch": n_batch,
            "train.eval_every": 8,
            "train.checkpoint_every": 2,
        },
    )
    a, b = tmp_path / "a", tmp_path / "b"
    torchrun = launch_command(2, ["train", str(RUN_FILE), *overrides, "--out", str(a), "--quiet"])
    proc = subprocess.Popen(torchrun, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _last_step(a) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    for pid in [*_children(proc.pid), proc.pid]:  # both ranks, then torchrun: a lost node
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    killed_at = _last_step(a)
    assert 5 <= killed_at < n_batch - 1, "the run finished before it could be killed"

    resumed = _brain2text("train", "--resume", a, "--quiet", "--nproc", 2)
    assert resumed.returncode == 0, resumed.stderr
    done = _brain2text("train", RUN_FILE, *overrides, "--out", b, "--quiet", "--nproc", 2)
    assert done.returncode == 0, done.stderr
    rows_a, rows_b = _without_timing(a), _without_timing(b)
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b]
    assert rows_a == rows_b
    assert TIMING_KEYS.isdisjoint(rows_a[0])


def test_an_uneven_split_fails_before_launching(prepared_dir, tmp_path):
    out = tmp_path / "run"
    result = _brain2text(
        "train",
        RUN_FILE,
        *tiny_overrides(prepared_dir, **{"train.batch_size": 5}),
        "--out",
        out,
        "--nproc",
        2,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: train.batch_size=5 cannot be split evenly over 2 "
        "processes; choose a multiple of 2\n"
    )
    assert not out.exists()


def test_only_train_runs_under_torchrun(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "brain2text", "runs", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**ENV, "WORLD_SIZE": "2"},
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error (rank 0 of 2): runs: only train runs under torchrun "
        "(this command runs in one process)\n"
    )


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_rank_at_one_batch(prepared_dir, tmp_path):
    overrides = tiny_overrides(
        prepared_dir, **{"train.batch_size": 8, "train.n_batch": 40, "train.eval_every": 20}
    )
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cli_args("train", RUN_FILE, *overrides, "--out", run, "--quiet", "--nproc", 2),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _last_step(run) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)  # as Slurm signals every process of the job step
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert f"continue with: brain2text train --resume {run} --nproc 2" in err
    record = json.loads((run / "run.json").read_text())
    stopped = record["interrupted"]["step"]
    assert record["status"] == "interrupted" and stopped < 39
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt.step == stopped and len(ckpt.resume["rng_by_rank"]) == 2
    resumed = _brain2text("train", "--resume", run, "--quiet", "--nproc", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
