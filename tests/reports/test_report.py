import json
import math
import re

import numpy as np
import pytest
from matplotlib.image import imread

from brain2text.atomic import atomic_write_text
from brain2text.cli import main
from brain2text.config import load_run, to_yaml
from brain2text.errors import DataError
from brain2text.evaluation.summary import EvalSummary, summary_text
from brain2text.reports.listing import find_reference_run
from brain2text.reports.report import write_report
from tests.conftest import RUNS

DAYS = ("t12.2022.04.28", "t12.2022.05.05")
PNGS = ("lr.png", "loss.png", "per.png", "grad_norm.png", "skipped.png")


def make_run(run_dir, n_batch: int = 40, eval_every: int = 10, per_drop: float = 0.08):
    """A finished run folder written by hand: a child of run13_onecycle_safe with its criteria."""
    config = load_run(
        RUNS / "run13_cpu_demo.yaml", [f"train.n_batch={n_batch}", f"train.eval_every={eval_every}"]
    )
    run_dir.mkdir(parents=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(config))
    rows, skipped = [], 0
    for step in range(n_batch):
        grad_norm = "nan" if step == 17 else 3.0 * math.exp(-step / 10) + 0.5
        skipped += step == 17
        rows.append(
            {
                "step": step,
                "train/loss": 6.0 * math.exp(-step / 15) + 1 + 0.1 * (step % 3),
                "lr": 1e-3 * (1 + step),
                "grad_norm": grad_norm,
                "skipped_steps": skipped,
                "time_per_batch": 0.1,
                "samples_per_s": 320.0,
            }
        )
        if (step + 1) % eval_every == 0:
            per = 0.6 - per_drop * (step + 1) / 10
            rows.append(
                {
                    "step": step,
                    "val/loss": 2.0 - step / 40,
                    "val/per": per,
                    **{f"val/per/{d}": per + 0.02 * k for k, d in enumerate(DAYS)},
                }
            )
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "name": config.name,
                "parent": config.parent,
                "status": "finished",
                "started": "2025-12-04T10:00:00",
                "wall_s": 754.2,
            }
        )
    )
    test = run_dir / "eval" / "test"
    test.mkdir(parents=True)
    summary = EvalSummary(
        split="test",
        weights="raw",
        data="prepared",
        n_sentences=12,
        labelled=True,
        checkpoint_step=39,
        per=0.3125,
        edit_distance=50,
        n_phonemes=160,
        per_day={DAYS[0]: 0.3, DAYS[1]: 0.325},
    )
    (test / "summary.json").write_text(summary_text(summary))
    hyps = [
        {
            "session": DAYS[k % 2],
            "trial": k,
            "text": f"sentence number {k}",
            "ref": "HH AH L OW SIL",
            "hyp": "HH AH L OW SIL"[: 14 - k],
            "per": k / 14,
        }
        for k in range(12)
    ]
    (test / "hypotheses.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hyps))
    (test / "errors.txt").write_text(
        "# most frequent errors (REF -> HYP; * = nothing)\n\n"
        "     7  SIL -> *\n     3  OW -> AO\n\n# aligned\n"
    )
    return config


def test_report_files_plots_and_page(tmp_path):
    run_dir = tmp_path / "run13_cpu_demo"
    make_run(run_dir)
    index = write_report(run_dir)
    assert index == run_dir / "report" / "index.html"
    for name in PNGS:
        image = imread(run_dir / "report" / name)
        assert image.shape[0] > 100 and image.shape[1] > 300, name
        assert np.var(image[..., :3]) > 0, f"{name} is blank"
    page = index.read_text()
    assert "run13_cpu_demo" in page and "run13_onecycle_safe" in page
    assert page.count("data:image/png;base64,") == len(PNGS)
    assert not re.search(r"(src|href)=\"(?!data:)", page), "the page must be self-contained"
    # criteria inherited from run13_onecycle_safe, judged on the hand-made metrics
    assert "best val PER 0.2800 at batch 39 vs target &lt; 0.25" in page  # not met
    assert "<td>not met</td>" in page and "<td>met</td>" in page  # grad norms stay < 10
    assert "1 steps skipped" in page
    assert "runs/run11: no metrics.jsonl" in page and "not measurable" in page
    # facts, evaluation evidence and the config diff against the parent
    assert "40 of 40" in page and "12.6 min" in page and "finished" in page
    assert "0.3125" in page and "sentence number 11" in page and "OW -&gt; AO" in page
    assert "<td>model.n_units</td><td>1024</td><td>128</td>" in page
    assert "<td>train.n_batch</td><td>10000</td><td>40</td>" in page


def test_report_without_parent_file_says_so(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    text = (
        (run_dir / "config.yaml")
        .read_text()
        .replace("parent: run13_onecycle_safe", "parent: run_nowhere")
    )
    (run_dir / "config.yaml").write_text(text)
    page = write_report(run_dir).read_text()
    assert (
        "parent run_nowhere: cannot load (run_nowhere: no such run file, nor a packaged run" in page
    )


def test_faster_than_reads_the_other_run(tmp_path, monkeypatch):
    make_run(tmp_path / "runs" / "run11")  # reaches run13_cpu_demo's PER 0.5 at batch 19
    run_dir = tmp_path / "runs" / "run13"
    make_run(run_dir, per_drop=0.11)  # reaches it at batch 9
    monkeypatch.chdir(tmp_path)
    page = write_report(run_dir).read_text()
    assert "val PER &lt;= 0.5 at batch 9 vs runs/run11 at batch 19" in page


def test_missing_metrics_is_a_one_line_data_error(tmp_path, capsys):
    with pytest.raises(DataError, match=re.escape(str(tmp_path))):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and err.count("\n") == 1


def test_cli_report(tmp_path, capsys):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out == f"report in {run_dir / 'report' / 'index.html'}\n"


def test_faster_than_finds_the_other_run_beside_this_one_from_any_directory(tmp_path, monkeypatch):
    make_run(tmp_path / "work" / "runs" / "run11")
    run_dir = tmp_path / "work" / "runs" / "run13"
    make_run(run_dir, per_drop=0.11)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # runs/run11 is not below the working directory
    page = write_report(run_dir).read_text()
    assert "val PER &lt;= 0.5 at batch 9 vs runs/run11 at batch 19" in page
    assert find_reference_run("runs/run11", run_dir) == tmp_path / "work" / "runs" / "run11"
    assert find_reference_run("runs/run11") is None  # no run folder to start from
    assert find_reference_run(str(tmp_path / "work" / "runs" / "run11")) is not None
    assert find_reference_run(str(tmp_path / "nowhere")) is None


def test_faster_than_without_the_other_run_is_not_measurable(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "run13"
    make_run(run_dir)
    monkeypatch.chdir(tmp_path)
    page = write_report(run_dir).read_text()
    assert "runs/run11: no metrics.jsonl to compare with" in page


def test_an_unreadable_summary_is_said_in_its_place(tmp_path):
    run_dir = tmp_path / "run"
    make_run(run_dir)
    broken = run_dir / "eval" / "val"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    page = write_report(run_dir).read_text()
    assert "PER <b>0.3125</b>" in page  # the readable evaluation is still shown
    assert f"{broken / 'summary.json'}: not valid JSON" in page
