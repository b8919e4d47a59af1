"""A tiny synthetic release shared by the synth tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from brain2text.synth import generate

# 5 days so that the hold-out day 05.24 (day index 4) is among them.
TINY = {"days": 5, "train_per_day": 20, "test_per_day": 4, "holdout_per_day": 4, "seed": 3}


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "release"
    generate(out, progress=False, **TINY)
    return out
