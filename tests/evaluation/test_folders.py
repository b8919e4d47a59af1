"""An evaluation folder is written whole or not at all, and ``evaluate`` redraws the run's
report page with it."""

from __future__ import annotations

import pytest

from brain2text.atomic import atomic_write_text
from brain2text.cli import main
from brain2text.errors import StorageError
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.evaluation.summary import read_summary
from tests.conftest import RUNS, tiny_overrides


@pytest.fixture(scope="module")
def run(prepared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("folders") / "run"
    argv = ["train", str(RUNS / "run13_cpu_demo.yaml"), *tiny_overrides(prepared_dir)]
    assert main([*argv, "--out", str(folder), "--quiet"]) == 0
    assert "no evaluation files yet" in (folder / "report" / "index.html").read_text()
    return folder


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_an_evaluation_replaces_the_folder_whole(run, raw_dir, capsys):
    out = run / "eval" / "competition"
    assert main(["evaluate", str(run), "--split", "competition", "--checkpoint", "last"]) == 0
    assert _names(out) == ["decoded.jsonl", "decoded.txt", "summary.json"]
    assert read_summary(out).checkpoint.endswith("last.pt") and not read_summary(out).labelled
    answers = raw_dir / "holdout_answers.json"
    argv = ["evaluate", str(run), "--split", "competition", "--answers", str(answers)]
    assert main(argv) == 0
    assert _names(out) == ["errors.txt", "hypotheses.jsonl", "summary.json"]  # nothing of last's
    summary = read_summary(out)
    assert summary.labelled and summary.checkpoint.endswith("best.pt") and summary.per is not None
    page = (run / "report" / "index.html").read_text()
    assert f"PER <b>{summary.per:.4f}</b>" in page and "no evaluation files yet" not in page
    assert f"report: {run / 'report' / 'index.html'}" in capsys.readouterr().out


def test_a_failed_evaluation_leaves_the_previous_folder(run, monkeypatch):
    out = run / "eval" / "test"
    evaluate_run(run, split_name="test")
    before = {p.name: p.read_text() for p in out.iterdir()}
    calls = []

    def failing(path, text):
        calls.append(path)
        if path.name == "summary.json":
            raise StorageError(f"{path}: cannot write, the disk is full (nothing was written)")
        atomic_write_text(path, text)

    monkeypatch.setattr("brain2text.atomic.atomic_write_text", failing)
    with pytest.raises(StorageError, match="disk is full"):
        evaluate_run(run, split_name="test", checkpoint="last")
    assert calls and {p.name: p.read_text() for p in out.iterdir()} == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
