"""The machine log channel: metrics.jsonl rows mirrored as TensorBoard scalars."""

import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from brain2text.runs.runlog import RunLog, read_metrics, truncate_metrics


def test_metrics_rows_become_tensorboard_scalars(tmp_path):
    log = RunLog(tmp_path, quiet=True)
    log.metrics(
        {"step": 0, "train/loss": 7.5, "lr": 1e-3, "grad_norm": math.nan, "skipped_steps": 1}
    )
    log.metrics({"step": 1, "train/loss": 6.25, "lr": 2e-3, "grad_norm": 3.0, "skipped_steps": 1})
    log.metrics({"step": 1, "val/per": 0.5, "val/per/t12.2022.04.28": 0.25, "note": "text"})
    log.close()

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == {
        "train/loss",
        "lr",
        "grad_norm",
        "skipped_steps",
        "val/per",
        "val/per/t12.2022.04.28",
    }  # no "step", no strings
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1]
    assert [e.value for e in loss] == pytest.approx([7.5, 6.25])
    grad = events.Scalars("grad_norm")
    assert [(e.step, e.value) for e in grad] == [(1, 3.0)]  # the NaN is left out
    assert events.Scalars("val/per")[0].value == pytest.approx(0.5)
    # the JSONL still holds everything: NaN is stored as "nan" and read back as a float
    assert '"grad_norm": "nan"' in (tmp_path / "metrics.jsonl").read_text().splitlines()[0]
    assert math.isnan(read_metrics(tmp_path)[0]["grad_norm"])


def test_resume_truncates_metrics_and_purges_later_tensorboard_events(tmp_path):
    log = RunLog(tmp_path, quiet=True)
    for step in range(6):
        log.metrics({"step": step, "train/loss": float(step)})
    log.metrics({"step": 5, "warning": "trend", "message": "m", "lr": 0.1})
    log.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/lo')  # a row cut short by kill -9
    assert truncate_metrics(tmp_path, 3) == 4
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1, 2, 3]
    # a resume is another process, seconds later: its event file sorts after the first one
    # (files of one second are ordered by a per-process counter, compared as text)
    for events_file in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        stamp = events_file.name.split(".")[3]
        events_file.rename(
            events_file.with_name(
                events_file.name.replace(f".{stamp}.", f".{int(stamp) - 10:010d}.", 1)
            )
        )
    log = RunLog(tmp_path, quiet=True, purge_step=4)
    log.metrics({"step": 4, "train/loss": 40.0})
    log.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [
        (0, 0.0),
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 40.0),
    ]
