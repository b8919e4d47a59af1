"""Recipe test, as torchtune has: the real ``brain2text train`` CLI for two steps on the fixed
synthetic ``prepared_dir`` data, with the logged losses pinned to 1e-4 and the PER exactly.

The pinned numbers change, and must be recomputed and re-pinned on purpose, when any of these
changes: the model's init or forward pass (GRUDecoder, smoothing, patching), the data
(tests/conftest.py's synth seed and sizes, the synth generator, ``prepare``, the validation
carving, the batch order), the augmentation and its random draws, the optimizer or the schedule
(run13_cpu_demo.yaml and its parents), the CTC loss, the evaluation pass (packed batches),
greedy decoding or the PER. To re-pin: run this test, read the values it prints on failure, and
check that the change that moved them was meant to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brain2text.cli import main
from brain2text.runs.runlog import read_metrics
from tests.conftest import RUNS, tiny_overrides

# computed once on CPU (torch 2.13, 1 thread), run13_cpu_demo + tiny_overrides, 2 batches
PINNED_TRAIN_LOSSES = (8.137419700622559, 8.761648178100586)
# evaluation reads each trial of a batch packed (its own length, as alone): re-pinned for it
PINNED_VAL_LOSS = 7.5563711524009705
# PER = edits / reference phonemes, over the 3 days' validation trials: (201 + 230 + 200) edits
# against (209 + 218 + 186) phonemes; above 1, an untrained model's greedy output inserts
PINNED_VAL_PER = 631 / 613
PINNED_VAL_PER_BY_DAY = {
    "t12.2022.04.28": 201 / 209,
    "t12.2022.05.05": 230 / 218,
    "t12.2022.05.17": 200 / 186,
}


def test_two_steps_of_the_cli_recipe_are_pinned(prepared_dir: Path, tmp_path: Path):
    run = tmp_path / "run"
    overrides = tiny_overrides(prepared_dir, **{"train.n_batch": 2, "train.eval_every": 2})
    code = main(
        ["train", str(RUNS / "run13_cpu_demo.yaml"), *overrides, "--out", str(run), "--quiet"]
    )
    assert code == 0
    rows = read_metrics(run)
    steps = [r for r in rows if "train/loss" in r]
    (val,) = [r for r in rows if "val/per" in r]
    assert [r["step"] for r in steps] == [0, 1] and val["step"] == 1
    losses = tuple(r["train/loss"] for r in steps)
    assert losses == pytest.approx(PINNED_TRAIN_LOSSES, abs=1e-4), losses
    assert val["val/loss"] == pytest.approx(PINNED_VAL_LOSS, abs=1e-4), val["val/loss"]
    assert val["val/per"] == PINNED_VAL_PER, val["val/per"]
    by_day = {k.removeprefix("val/per/"): v for k, v in val.items() if k.startswith("val/per/")}
    assert by_day == PINNED_VAL_PER_BY_DAY, by_day
    best = json.loads((run / "run.json").read_text())["best"]
    assert best == {"per": PINNED_VAL_PER, "step": 1, "split": "val"}
