"""Pre-emption: SIGTERM or SIGUSR1 ends a run cleanly at the step it is in, with last.pt
written there and status ``interrupted``; ``--resume`` then ends exactly as the run left
alone. A run killed outright shows as ``stale`` in ``brain2text runs``."""

import json
import signal
import subprocess
import time

import pytest

from brain2text.cli import EXIT_INTERRUPTED
from brain2text.reports.listing import collect_runs
from brain2text.runs.checkpoint import load_checkpoint
from tests.conftest import RUNS
from tests.training.test_resume import (
    ENV,
    _cli,
    _last_step,
    _overrides,
    _run,
    _without_timing,
)

RUN_FILE = RUNS / "run13_cpu_demo.yaml"


def _start(prepared_dir, out, *extra):
    return subprocess.Popen(
        _cli("train", RUN_FILE, *_overrides(prepared_dir), *extra, "--out", out, "--quiet"),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signal_after(proc, run_dir, step: int, sig: int) -> None:
    deadline = time.monotonic() + 120
    while _last_step(run_dir) < step and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(sig)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_interrupts_cleanly_and_the_run_resumes_exactly(prepared_dir, tmp_path, sig):
    a, b = tmp_path / "a", tmp_path / "b"
    # checkpoints only at evaluations (every 4): the signal's step has no scheduled save
    proc = _start(prepared_dir, a, "train.checkpoint_every=null")
    _signal_after(proc, a, 5, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    record = json.loads((a / "run.json").read_text())
    stopped = record["interrupted"]["step"]
    assert record["status"] == "interrupted" and record["interrupted"]["signal"] == sig.name
    assert stopped < 11, "the run finished before the signal came"
    assert load_checkpoint(a / "checkpoints" / "last.pt").step == stopped
    assert max(r["step"] for r in _without_timing(a)) == stopped  # nothing after it was logged
    assert err.count("\n") == 1 and f"--resume {a}" in err and "Traceback" not in err
    assert collect_runs(tmp_path)[0].status == "interrupted"

    resumed = _run("train", "--resume", a, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    done = _run(
        "train",
        RUN_FILE,
        *_overrides(prepared_dir),
        "train.checkpoint_every=null",
        "--out",
        b,
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert _without_timing(a) == _without_timing(b)
    record = json.loads((a / "run.json").read_text())
    assert record["status"] == "finished" and record["resumed_from"][0]["step"] == stopped


@pytest.mark.slow
def test_a_killed_run_is_listed_as_stale(prepared_dir, tmp_path):
    run = tmp_path / "run"
    proc = _start(prepared_dir, run)
    _signal_after(proc, run, 3, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert collect_runs(tmp_path)[0].status == "stale"


@pytest.mark.slow
def test_auto_resume_starts_then_continues(prepared_dir, tmp_path):
    run = tmp_path / "run"
    proc = _start(prepared_dir, run, "--auto-resume")  # nothing to resume: starts the run
    _signal_after(proc, run, 5, signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED
    again = _run(
        "train", RUN_FILE, *_overrides(prepared_dir), "--out", run, "--auto-resume", "--quiet"
    )  # the same command, as a requeued job runs it
    assert again.returncode == 0, again.stderr
    assert "resumed from step" in (run / "train.log").read_text()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    other = _run(
        "train",
        RUN_FILE,
        *_overrides(prepared_dir),
        "train.n_batch=20",
        "--out",
        run,
        "--auto-resume",
        "--quiet",
    )  # another config must not continue this run
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert "its run has train.n_batch=12, the run file gives 20" in other.stderr
