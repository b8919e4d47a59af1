"""run.json status as it stands: a run whose process is gone is stale, not running."""

import json
import os
import socket
import subprocess
import time

from brain2text.runs.folder import (
    HEARTBEAT_FILE,
    STALE_AFTER_S,
    Heartbeat,
    is_stale,
    process_facts,
    status_of,
    write_run_record,
)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_running_run_of_this_host_is_stale_once_its_process_is_gone(tmp_path):
    write_run_record(
        tmp_path, {"process": {"host": socket.gethostname(), "pid": _dead_pid()}}, "running"
    )
    record = json.loads((tmp_path / "run.json").read_text())
    assert is_stale(tmp_path, record) and status_of(tmp_path, record) == "stale"
    alive = {**record, "process": process_facts()}  # this test's own process
    assert alive["process"]["pid"] == os.getpid()
    assert status_of(tmp_path, alive) == "running"


def test_a_run_of_another_host_is_stale_when_its_heartbeat_stops(tmp_path):
    record = {"status": "running", "process": {"host": "node-that-died", "pid": 1}}
    (tmp_path / HEARTBEAT_FILE).touch()
    assert status_of(tmp_path, record) == "running"
    later = time.time() + STALE_AFTER_S + 1
    assert is_stale(tmp_path, record, now=later)
    old = time.time() - STALE_AFTER_S - 60
    os.utime(tmp_path / HEARTBEAT_FILE, (old, old))
    assert status_of(tmp_path, record) == "stale"


def test_ended_runs_keep_their_status(tmp_path):
    for status in ("finished", "failed", "interrupted", "stopped early"):
        record = {"status": status, "process": {"host": socket.gethostname(), "pid": _dead_pid()}}
        assert status_of(tmp_path, record) == status


def test_heartbeat_touches_its_file_until_it_stops(tmp_path):
    beat = tmp_path / HEARTBEAT_FILE
    with Heartbeat(tmp_path, every=0.01):
        time.sleep(0.05)
        first = beat.stat().st_mtime_ns
        time.sleep(0.05)
        assert beat.stat().st_mtime_ns > first
    stopped = beat.stat().st_mtime_ns
    time.sleep(0.05)
    assert beat.stat().st_mtime_ns == stopped
