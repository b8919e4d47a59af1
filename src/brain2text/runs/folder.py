"""A run folder: creating it, its record ``run.json`` (reproducibility facts, status, timing),
its resolved ``config.yaml``, and whether a run said to be running still is.

A training process records its host and pid in run.json and touches ``.heartbeat`` every
``HEARTBEAT_S`` seconds from a background thread (evaluations and checkpoints included). A run
whose status is still ``running`` is ``stale`` when its process is gone: on the same host, when
no process has its pid; on another host (a lost node), when the heartbeat is older than
``STALE_AFTER_S``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from brain2text.atomic import atomic_write_text
from brain2text.errors import DataError
from brain2text.runs.metric_keys import METRICS_FILE

RUN_FILES = (METRICS_FILE, "train.log", "run.json", "config.yaml", ".heartbeat")
RUN_SUBDIRS = ("checkpoints", "eval", "tensorboard", "report")
HEARTBEAT_FILE = ".heartbeat"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
RUNNING, STALE = "running", "stale"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def prepare_run_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``; a non-empty one is refused unless ``overwrite`` (then the run's own
    files are removed, anything else in it is kept)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise DataError(
                f"{out_dir}: run folder exists and is not empty "
                "(choose another --out or pass --overwrite)"
            )
        for name in RUN_FILES:
            (out_dir / name).unlink(missing_ok=True)
        for sub in RUN_SUBDIRS:
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def stamp(seconds: float | None = None) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(seconds))


def process_facts() -> dict:
    """Where the training process runs, for :func:`is_stale`."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def write_run_record(out_dir: Path, base: dict, status: str, extra: dict | None = None) -> None:
    """run.json: the reproducibility record ``base`` plus the run's status and timing."""
    record = {**base, "status": status, "updated": stamp(), **(extra or {})}
    atomic_write_text(out_dir / "run.json", json.dumps(record, indent=2) + "\n")


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """run.json as a dict, or None when it is missing or not a JSON object."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config.yaml as nested dicts."""
    path = run_dir / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read the run's config ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a mapping of config sections")
    return data


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def is_stale(run_dir: Path, record: dict, now: float | None = None) -> bool:
    """True when ``record`` says running but its process is gone (see the module docstring)."""
    if record.get("status") != RUNNING:
        return False
    process = record.get("process") or {}
    if process.get("host") == socket.gethostname() and isinstance(process.get("pid"), int):
        return not _pid_alive(process["pid"])
    beat = run_dir / HEARTBEAT_FILE
    try:
        last = beat.stat().st_mtime
    except OSError:
        last = (run_dir / "run.json").stat().st_mtime if (run_dir / "run.json").exists() else 0.0
    return (now or time.time()) - last > STALE_AFTER_S


def status_of(run_dir: Path, record: dict) -> str:
    """The run's status as it stands: run.json's, or ``stale`` for a dead ``running`` run."""
    status = str(record.get("status", "?"))
    return STALE if status == RUNNING and is_stale(run_dir, record) else status


class Heartbeat:
    """Touches ``run_dir/.heartbeat`` every ``every`` seconds while the run is alive."""

    def __init__(self, run_dir: Path, every: float = HEARTBEAT_S) -> None:
        self.path = run_dir / HEARTBEAT_FILE
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="brain2text-heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                self.path.touch()
            except OSError:
                pass  # a full disk or a removed folder: the run's own writes will say so
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
