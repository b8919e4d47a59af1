"""``brain2text runs`` and ``brain2text compare`` on run folders written by hand."""

import json

import matplotlib.image
import pytest

from brain2text.cli import main
from brain2text.config import config_differences, load_run, to_yaml
from brain2text.errors import DataError
from brain2text.reports.compare import load_runs
from brain2text.reports.listing import collect_runs, find_run_dirs, runs_table
from tests.conftest import RUNS


def make_run(
    folder,
    name,
    *,
    parent=None,
    status="finished",
    wall_s=125.0,
    max_lr=None,
    pers=(0.6, 0.4, 0.45),
    n_batch=6,
    split="val",
    overrides=(),
):
    """A run folder as training leaves it: run.json, config.yaml, metrics.jsonl."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps(
            {
                "name": name,
                "parent": parent,
                "status": status,
                "started": "2026-01-01T00:00:00",
                "wall_s": wall_s,
            }
        )
    )
    config = load_run(
        RUNS / "baseline.yaml",
        [f"name={name}", *overrides] + ([f"optim.max_lr={max_lr}"] if max_lr else []),
    )
    (folder / "config.yaml").write_text(to_yaml(config))
    rows, every = [], n_batch // len(pers)
    for step in range(n_batch):
        rows.append(
            {
                "step": step,
                "train/loss": 5.0 - 0.5 * step,
                "lr": 0.01 * (step + 1),
                "grad_norm": "nan" if step == 1 else 1.0 + step,
                "skipped_steps": int(step >= 1),
                "time_per_batch": 0.5,
                "samples_per_s": 10.0 * (step + 1),
            }
        )
        if (step + 1) % every == 0:
            per = pers[(step + 1) // every - 1]
            rows.append(
                {
                    "step": step,
                    f"{split}/loss": 1.0,
                    f"{split}/per": per,
                    f"{split}/per/t12.2022.04.28": per,
                }
            )
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_collect_runs_summarizes_each_folder(tmp_path):
    make_run(tmp_path / "b_run", "run_b", parent="baseline", max_lr=0.01)
    make_run(tmp_path / "sweep" / "lr" / "a", "run_a", split="test", pers=(0.5, 0.3), wall_s=4000)
    make_run(tmp_path / "too" / "deep" / "down" / "here", "hidden")  # 4 levels: not searched
    (tmp_path / "b_run" / "eval").mkdir()  # a run folder's subfolders are not runs
    runs = collect_runs(tmp_path)
    assert [r.name for r in runs] == ["run_a", "run_b"]
    a, b = runs
    assert (b.parent, b.status, b.batches) == ("baseline", "finished", 6)
    assert (b.best_per, b.best_step, b.final_per) == (0.4, 3, 0.45)
    assert b.samples_per_s == pytest.approx(35.0)  # median of 10..60
    assert b.wall_s == 125.0
    assert (a.best_per, a.best_step, a.final_per) == (0.3, 5, 0.3)  # test/ prefix read too

    lines = runs_table(runs, tmp_path).splitlines()
    assert lines[0].split()[:3] == ["run", "parent", "status"]
    assert lines[0].split()[-1] == "verdicts"
    # baseline.yaml sets no success criteria: nothing to judge
    assert lines[1].split() == [
        "run_a",
        "-",
        "finished",
        "6",
        "0.3000",
        "5",
        "0.3000",
        "1h06m",
        "35.0",
        "sweep/lr/a",
        "-",
    ]
    assert lines[2].split() == [
        "run_b",
        "baseline",
        "finished",
        "6",
        "0.4000",
        "3",
        "0.4500",
        "2m05s",
        "35.0",
        "b_run",
        "-",
    ]
    assert lines[1].index("finished") == lines[0].index("status")  # aligned columns


def test_unreadable_run_json_is_listed_not_fatal(tmp_path):
    make_run(tmp_path / "good", "good")
    bad = make_run(tmp_path / "broken", "broken")
    (bad / "run.json").write_text('{"name": "broken", "stat')  # killed mid-write
    with open(bad / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/lo')  # partial last line
    missing = make_run(tmp_path / "nojson", "nojson")
    (missing / "run.json").unlink()
    runs = {r.name: r for r in collect_runs(tmp_path)}
    assert runs["broken"].status == runs["nojson"].status == "unreadable"
    assert runs["broken"].batches == 6 and runs["broken"].best_per == 0.4
    assert runs["good"].status == "finished"
    assert "unreadable" in runs_table(list(runs.values()), tmp_path)


def test_verdicts_column_judges_the_run_files_criteria(tmp_path):
    # best 0.4 < 0.5: met; last 0.45 > 0.42: not met; steps were skipped: not met
    make_run(
        tmp_path / "r",
        "r",
        overrides=[
            "criteria.target_per=0.5",
            "criteria.final_per=0.42",
            "criteria.no_nonfinite=true",
        ],
    )
    runs = collect_runs(tmp_path)
    assert runs[0].verdicts == "1/3 met"
    table = runs_table(runs, tmp_path).splitlines()
    assert table[0].split()[-1] == "verdicts" and table[1].endswith("1/3 met")


def test_missing_runs_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        collect_runs(tmp_path / "nowhere")
    assert find_run_dirs(tmp_path) == []


def test_config_differences_of_run_folders(tmp_path):
    runs = load_runs([make_run(tmp_path / "a", "a"), make_run(tmp_path / "b", "b", max_lr=0.01)])
    assert config_differences([r.config for r in runs], ignore=("name",)) == [
        ("optim.max_lr", [0.02, 0.01])
    ]


def test_compare_cli_writes_a_figure_and_prints_the_diff(tmp_path, capsys):
    a = make_run(tmp_path / "a", "run_a")
    b = make_run(tmp_path / "b", "run_b", max_lr=0.01, pers=(0.7, 0.5), split="test")
    out = tmp_path / "figs" / "cmp.png"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["key", "run_a", "run_b"]
    assert printed[1].split() == ["optim.max_lr", "0.02", "0.01"]
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.var() > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["cmp.png"]  # no temporary left


def test_compare_missing_folder_is_one_line_error(tmp_path, capsys):
    a = make_run(tmp_path / "a", "a")
    with pytest.raises(DataError, match="nope: no such run folder"):
        load_runs([a, tmp_path / "nope"])
    assert main(["compare", str(a), str(tmp_path / "nope"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err
    assert not (tmp_path / "x.png").exists()


def test_runs_cli_prints_the_table(tmp_path, capsys):
    make_run(tmp_path / "runs" / "r1", "r1")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("r1 ")


def test_a_running_run_shows_its_elapsed_time():
    from datetime import datetime, timedelta

    from brain2text.reports.listing import elapsed_since

    stamp = (datetime.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    assert 299 <= elapsed_since(stamp) <= 330
    assert elapsed_since("not a time") is None and elapsed_since(None) is None
