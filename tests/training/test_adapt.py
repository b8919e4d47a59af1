"""brain2text adapt: a day the run never saw gets its own input layer, fitted alone on a few
labelled sentences; PER on its held-out sentences before and after."""

import json
import shutil
import warnings

import pytest

from brain2text import Decoder
from brain2text.cli import main
from brain2text.data.prepare import prepare
from brain2text.errors import ConfigError, DataError
from brain2text.training.adapt import adapt
from tests.conftest import RUNS


@pytest.fixture(scope="module")
def two_day_run(raw_dir, tmp_path_factory):
    """A run trained on the first two days of ``raw_dir``; its third day is held back."""
    root = tmp_path_factory.mktemp("adapt")
    days = sorted(p.name for p in (raw_dir / "train").glob("*.mat"))
    (root / "raw" / "train").mkdir(parents=True)
    for name in days[:2]:
        shutil.copy(raw_dir / "train" / name, root / "raw" / "train" / name)
    prepare(root / "raw", root / "prep", progress=False)
    assert (
        main(
            [
                "train",
                str(RUNS / "run13_cpu_demo.yaml"),
                f"data.path={root / 'prep'}",
                "model.n_units=32",
                "model.n_layers=1",
                "model.kernel_len=8",
                "train.batch_size=8",
                "train.n_batch=60",
                "train.eval_every=30",
                "train.threads=1",
                "--out",
                str(root / "run"),
                "--quiet",
            ]
        )
        == 0
    )
    return root / "run", raw_dir / "train" / days[2], days[2][:-4]


@pytest.mark.slow
def test_adapting_a_held_back_day_lowers_its_per(two_day_run, tmp_path, capsys):
    run, recording, day = two_day_run
    out = tmp_path / "adapted"
    assert (
        main(
            [
                "adapt",
                str(run),
                str(recording),
                "adapt.steps=40",
                "adapt.lr=0.01",
                "adapt.batch_size=4",
                "--day",
                day,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    figures = json.loads((out / "adapt.json").read_text())
    assert figures["per_after"] < figures["per_before"], figures
    assert f"{figures['per_before']:.4f} -> {figures['per_after']:.4f}" in printed
    assert figures["n_fitted"] + figures["n_held_out"] == 20
    dec = Decoder.load(out)
    assert dec.days[-1] == day and len(dec.days) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the adapted run knows the day: no borrowing
        assert main(["decode", str(out), str(recording)]) == 0
    original = Decoder.load(run)
    for name in original.days:  # the other days' layers are untouched
        k = original.days.index(name)
        assert (dec.model.day_weights[k] == original.model.day_weights[k]).all()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_adapt_refuses_a_known_day_and_too_few_sentences(two_day_run, tmp_path, raw_dir):
    run, recording, day = two_day_run
    known = Decoder.load(run).days[0]
    with pytest.raises(ConfigError, match=f"--day {known}: already a training day"):
        adapt(run, recording, known, tmp_path / "a")
    with pytest.raises(DataError, match="too few to fit on some and measure on others"):
        adapt(run, recording, day, tmp_path / "b", overrides=["adapt.held_out_fraction=0.99"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
