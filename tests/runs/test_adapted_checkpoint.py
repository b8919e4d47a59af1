"""The checkpoint ``adapt`` writes carries its evaluation, like every checkpoint training writes."""

import json
import shutil

from brain2text.cli import main
from brain2text.data.prepare import prepare
from brain2text.runs.checkpoint import load_checkpoint
from brain2text.training.state import LatestEval
from tests.conftest import RUNS, tiny_overrides


def test_the_adapted_best_pt_holds_the_held_out_evaluation(raw_dir, tmp_path, capsys):
    days = sorted(p.name for p in (raw_dir / "train").glob("*.mat"))
    (tmp_path / "raw" / "train").mkdir(parents=True)
    for name in days[:2]:
        shutil.copy(raw_dir / "train" / name, tmp_path / "raw" / "train" / name)
    prepare(tmp_path / "raw", tmp_path / "prep", progress=False)
    run, out = tmp_path / "run", tmp_path / "adapted"
    argv = ["train", str(RUNS / "run13_cpu_demo.yaml"), *tiny_overrides(tmp_path / "prep")]
    assert main([*argv, "--out", str(run), "--quiet"]) == 0
    day = days[2][:-4]
    argv = ["adapt", str(run), str(raw_dir / "train" / days[2]), "adapt.steps=2", "--day", day]
    assert main([*argv, "--out", str(out)]) == 0
    figures = json.loads((out / "adapt.json").read_text())
    checkpoint = load_checkpoint(out / "checkpoints" / "best.pt")
    assert checkpoint.days[-1] == day and checkpoint.step == figures["steps"] == 2
    assert checkpoint.features is not None and checkpoint.features["n_features"] == 256
    held_out = LatestEval.from_entries(checkpoint.evaluations).raw
    assert held_out is not None and held_out.score.per == figures["per_after"]
    assert held_out.score.n_sentences == figures["n_held_out"]
    capsys.readouterr()
