"""``--workers K``: a sweep's jobs as K ``brain2text`` processes at a time on this machine.

Each job is a command line of the ``brain2text`` CLI (``train ... --auto-resume`` for a grid
child, ``sweep ... --optuna`` for a search worker); its output goes to ``OUT/logs/<job>.log``.
The machine's cores are shared out: each process gets ``OMP_NUM_THREADS = cores // K`` (unless
its run sets ``train.threads``). SIGTERM or SIGUSR1 to the sweep is passed on to every running
job, which stops as ``train`` does (``last.pt`` written, exit 75); no new job starts, and the
same command started again goes on where they stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from brain2text.training.interrupt import EXIT_INTERRUPTED, STOP_SIGNALS

POLL_S = 0.2


@dataclass(frozen=True)
class Job:
    name: str  # also its log file's name
    arguments: list[str]  # after ``python -m brain2text``


@dataclass(frozen=True)
class JobsOutcome:
    interrupted: bool  # a stop signal arrived (the jobs it reached stopped resumably)
    failed: dict[str, str]  # job name -> "exit N: its log's last line", for those that failed


def threads_per_process(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def log_tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def run_jobs(
    jobs: list[Job], workers: int, log_dir: Path, on_end: Callable[[Job, int], None] | None = None
) -> JobsOutcome:
    """Run ``jobs`` at most ``workers`` at a time; ``on_end(job, exit status)`` is called as
    each one ends."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(workers))}
    pending = list(jobs)
    running: dict[subprocess.Popen[bytes], Job] = {}
    failed: dict[str, str] = {}
    caught: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)
        for proc in running:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        while pending or running:
            while pending and len(running) < workers and not caught:
                job = pending.pop(0)
                with open(log_dir / f"{job.name}.log", "ab") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "brain2text", *job.arguments],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                running[proc] = job
                print(
                    f"started {job.name} (pid {proc.pid}; log {log_dir / job.name}.log)", flush=True
                )
            if caught:
                pending.clear()
            time.sleep(POLL_S)
            for proc in [p for p in running if p.poll() is not None]:
                job = running.pop(proc)
                if proc.returncode not in (0, EXIT_INTERRUPTED):
                    failed[job.name] = (
                        f"exit {proc.returncode}: {log_tail(log_dir / f'{job.name}.log')}"
                    )
                if on_end is not None:
                    on_end(job, proc.returncode)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return JobsOutcome(bool(caught), failed)
