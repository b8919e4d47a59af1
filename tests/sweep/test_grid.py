"""brain2text sweep: a grid of child runs, their table and plot, resumed where it stopped."""

import json

import matplotlib.image
import pytest

from brain2text.cli import EXIT_INTERRUPTED, main
from brain2text.config import load_run
from brain2text.sweep.grid import parse_grid, plan_children
from tests.conftest import RUNS, tiny_overrides
from tests.training.test_resume import sigterm_when

RUN_FILE = RUNS / "run13_cpu_demo.yaml"


def test_the_grid_is_a_product_of_typed_values():
    grid = parse_grid(["optim.max_lr=0.002,0.01", "train.ema_decay=null,0.9"])
    assert grid == {"optim.max_lr": [0.002, 0.01], "train.ema_decay": [None, 0.9]}
    children = plan_children(RUN_FILE, grid, 2, ["train.seed=5"])
    assert len(children) == 8
    first = children[0]
    assert first.name == "max_lr=0.002-ema_decay=None-seed=5"
    assert first.config.optim.max_lr == 0.002 and first.config.train.ema_decay is None
    assert [c.config.train.seed for c in children[:2]] == [5, 6]


@pytest.mark.parametrize(
    "grid, message",
    [
        (["optim.max_lrr=0.1,0.2"], "max_lrr"),
        (["optim.max_lr=fast,0.2"], "optim.max_lr"),
        (["optim.max_lr"], "expected KEY=V1,V2"),
        # every child is resolved first: the second cannot be scheduled by OneCycleLR
        (["train.eval_every=5", "train.n_batch=20,10"], "optim.pct_start=0.1 x train.n_batch=10"),
    ],
)
def test_a_bad_grid_stops_before_any_child(tmp_path, capsys, grid, message):
    args = ["sweep", str(RUN_FILE), "--out", str(tmp_path / "sw")]
    for g in grid:
        args += ["--grid", g]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_a_sweep_runs_its_children_and_goes_on_where_it_stopped(prepared_dir, tmp_path, capsys):
    out = tmp_path / "sw"
    args = [
        "sweep",
        str(RUN_FILE),
        *tiny_overrides(prepared_dir, **{"train.n_batch": 12, "train.eval_every": 4}),
        "--grid",
        "optim.max_lr=0.002,0.01",
        "--out",
        str(out),
        "--quiet",
    ]
    first = out / "max_lr=0.002"
    code, stdout, err = sigterm_when(args, [first], 5)
    assert code == EXIT_INTERRUPTED, err
    assert "sweep interrupted in max_lr=0.002" in stdout
    assert not (out / "max_lr=0.01").exists()

    assert main(args) == 0  # the same command: the interrupted child resumes, the next runs
    printed = capsys.readouterr().out.splitlines()
    table = printed[next(i for i, line in enumerate(printed) if line.startswith("run ")) :]
    assert table[0].split()[-1] == "optim.max_lr"
    assert [line.split()[2] for line in table[1:3]] == ["finished", "finished"]
    assert "resumed from step" in (first / "train.log").read_text()
    image = matplotlib.image.imread(out / "sweep.png")
    assert image.ndim == 3 and image.var() > 0
    record = json.loads((out / "sweep.json").read_text())
    assert record["children"] == {
        "max_lr=0.002": {"optim.max_lr": 0.002},
        "max_lr=0.01": {"optim.max_lr": 0.01},
    }
    best = load_run(out / "best.yaml")  # the best child as a run file of its own
    pers = {line.split()[0]: float(line.split()[4]) for line in table[1:3]}
    winner = min(pers, key=pers.get)
    assert best.optim.max_lr == record["children"][winner]["optim.max_lr"]
    assert best.parent == str(RUN_FILE.resolve()) and best.train.n_batch == 12
    assert main(args) == 0  # nothing left to do
    assert capsys.readouterr().out.count("skipped") == 2


@pytest.mark.slow
def test_workers_train_children_side_by_side_and_pass_on_a_stop(prepared_dir, tmp_path, capsys):
    out = tmp_path / "sw"
    args = [
        "sweep",
        str(RUN_FILE),
        *tiny_overrides(prepared_dir, **{"train.n_batch": 60, "train.eval_every": 10}),
        "--grid",
        "optim.max_lr=0.002,0.01",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    children = [out / "max_lr=0.002", out / "max_lr=0.01"]
    code, stdout, err = sigterm_when(args, children, 12)  # passed on to both children
    assert code == EXIT_INTERRUPTED, err
    assert "started max_lr=0.002" in stdout and "started max_lr=0.01" in stdout
    for child in children:
        record = json.loads((child / "run.json").read_text())
        assert record["status"] == "interrupted" and record["interrupted"]["signal"] == "SIGTERM"
        assert (out / "logs" / f"{child.name}.log").is_file()
    assert not (out / "best.yaml").exists()

    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.count("finished") >= 2
    for child in children:
        assert "resumed from step" in (child / "train.log").read_text()
    assert (out / "best.yaml").is_file() and (out / "sweep.html").is_file()


def test_a_child_folder_holding_another_run_stops_the_sweep(prepared_dir, tmp_path, capsys):
    from brain2text.training.loop import train

    out = tmp_path / "sw"
    overrides = tiny_overrides(prepared_dir, **{"train.n_batch": 3})
    other = load_run(
        RUN_FILE, [*overrides, "optim.max_lr=0.003", 'name="max_lr=0.002"', "parent=run13_cpu_demo"]
    )
    train(other, out / "max_lr=0.002", quiet=True)
    (out / "max_lr=0.002" / "run.json").unlink()  # an unfinished attempt of another run
    args = ["sweep", str(RUN_FILE), *overrides, "--grid", "optim.max_lr=0.002", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "max_lr=0.002: holds a run with optim.max_lr=0.003" in err and err.count("\n") == 1
    assert not (out / "sweep.json").exists()
