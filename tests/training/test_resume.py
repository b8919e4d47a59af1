"""``brain2text train --resume``: a run killed at any moment (SIGKILL) and resumed from its
last.pt ends with the same metrics as the run left alone; the resume state of an older release
still reads."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from brain2text.runs.runlog import read_metrics
from brain2text.training.state import Counters, LoopState, capture_rng, restore_rng
from brain2text.training.watch import InstabilityWatch
from tests.conftest import RUNS, tiny_overrides

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TIMING_KEYS = {"time_per_batch", "samples_per_s"}
N_BATCH = 12


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "brain2text", *map(str, args)]


def _run(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(*args), capture_output=True, text=True, env=env or ENV)


def _overrides(prepared_dir) -> list[str]:
    return tiny_overrides(
        prepared_dir,
        **{
            "train.checkpoint_every": 2,
            "train.n_batch": N_BATCH,
            "train.eval_every": 4,
            "train.ema_decay": 0.5,
        },
    )


def sigterm_when(args, folders, step: int) -> tuple[int, str, str]:
    """Start the CLI with ``args``, send SIGTERM once every folder's metrics reach ``step``;
    its exit status, stdout and stderr."""
    proc = subprocess.Popen(
        _cli(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while (
        min(_last_step(f) for f in folders) < step
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=120)
    return proc.returncode, stdout, err


def _last_step(run_dir) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return -1
    steps = [json.loads(line)["step"] for line in lines[:-1]]  # the last line may be partial
    return max(steps, default=-1)


def _without_timing(run_dir) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(run_dir)]


# torch's default thread count (the machine's cores) as well as one thread: training is
# bit-reproducible at either, so the resumed run must match to the last bit
DEFAULT_THREADS = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["1", "default"])
def test_killed_and_resumed_run_matches_the_uninterrupted_one(prepared_dir, tmp_path, threads):
    a, b = tmp_path / "a", tmp_path / "b"
    run_file = RUNS / "run13_cpu_demo.yaml"
    env = ENV if threads == "1" else DEFAULT_THREADS
    over = [*_overrides(prepared_dir), f"train.threads={'null' if threads == 'default' else 1}"]
    proc = subprocess.Popen(
        _cli("train", run_file, *over, "--out", a, "--quiet"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _last_step(a) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    killed_at = _last_step(a)
    assert 6 <= killed_at < N_BATCH - 1, "the run finished before it could be killed"
    assert json.loads((a / "run.json").read_text())["status"] == "running"

    resumed = _run("train", "--resume", a, "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr
    done = _run("train", run_file, *over, "--out", b, "--quiet", env=env)
    assert done.returncode == 0, done.stderr

    rows_a, rows_b = _without_timing(a), _without_timing(b)
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b]
    assert rows_a == rows_b  # losses, LRs, grad norms, PERs (raw and EMA): exactly equal
    assert any("val/per_ema" in r for r in rows_a)
    assert "resumed from step" in (a / "train.log").read_text()
    record = json.loads((a / "run.json").read_text())
    assert record["status"] == "finished" and record["resumed_from"][0]["step"] <= killed_at


def test_resume_errors_are_one_line(prepared_dir, tmp_path):
    run = tmp_path / "run"
    out = _run(
        "train",
        RUNS / "run13_cpu_demo.yaml",
        *tiny_overrides(prepared_dir, **{"train.n_batch": 4, "train.eval_every": 2}),
        "--out",
        run,
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    last = run / "checkpoints" / "last.pt"
    data = last.read_bytes()
    payload = torch.load(last, weights_only=True)
    payload["resume"]["best"] = {"per": 0.5, "step": 1, "split": "val"}  # an older layout
    torch.save(payload, last)
    older = _run("train", "--resume", run, "--quiet")
    assert older.returncode == 2 and "older brain2text" in older.stderr
    last.write_bytes(data)
    cases = {
        "finished": ("already ended at step 3", None),
        "overrides": ("--resume continues", ["train.n_batch=8"]),
        "truncated": ("not a readable checkpoint", None),
        "missing": ("cannot be resumed", None),
    }
    for name, (message, extra) in cases.items():
        if name == "truncated":
            last.write_bytes(data[: len(data) // 2])
        if name == "missing":
            last.unlink()
        result = _run("train", "--resume", run, *(extra or []), "--quiet")
        assert result.returncode == 2, name
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, name
        assert message in result.stderr and "Traceback" not in result.stderr, name


# the ``resume`` entry of the last.pt that the first release wrote for run13_cpu_demo with
# tiny_overrides, train.n_batch=4, train.eval_every=2, train.ema_decay=0.5 (step 3)
RELEASE1_RESUME = Path(__file__).parent / "fixtures" / "release1_resume.pt"


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_a_resume_entry_written_by_the_first_release_restores_unchanged():
    """An old last.pt's ``resume`` entry reads into the loop's state and the scaler, watch and
    random streams, and this version writes the very same entry back from them."""
    saved = torch.load(RELEASE1_RESUME, weights_only=True)
    assert saved["step"] == 3
    entry = saved["resume"]
    state = LoopState.from_resume(entry)
    assert state.best.step == 1 and state.best.metric == "per" and state.best.stopped_early is None
    assert state.best.per == entry["best"]["evaluation"]["per"]
    assert state.latest.raw.step == 3 and state.latest.ema.weights == "ema"
    assert state.counters == Counters(0, 0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    scaler.load_state_dict(entry["scaler"])
    watch = InstabilityWatch()
    watch.load_state_dict(entry["watch"])
    generator = torch.Generator()
    restore_rng(entry["rng"], generator)
    again = state.to_resume(scaler, watch, [capture_rng(generator, torch.device("cpu"))])
    assert _same(again, entry)
