"""brain2text sweep --optuna: an Optuna study of child runs, pruned, resumed, joined."""

import json
import subprocess
import time

import optuna
import pytest

from brain2text.cli import EXIT_INTERRUPTED, main
from brain2text.config import load_run
from tests.conftest import RUNS, tiny_overrides
from tests.training.test_resume import ENV, _cli, sigterm_when

RUN_FILE = RUNS / "run13_cpu_demo.yaml"
SPACE = """optim.max_lr: {choices: [0.01, 0.00001]}
augment.white_noise_sd: {low: 0.1, high: 0.8}
"""


def _space(tmp_path, text=SPACE):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def _args(prepared_dir, tmp_path, n_trials, out, **extra):
    overrides = {"train.n_batch": 9, "train.eval_every": 3, **extra}
    return [
        "sweep",
        str(RUN_FILE),
        *tiny_overrides(prepared_dir, **overrides),
        "--optuna",
        str(n_trials),
        "--space",
        str(_space(tmp_path)),
        "--out",
        str(out),
        "--quiet",
    ]


def _study(out):
    return optuna.load_study(study_name="run13_cpu_demo", storage=f"sqlite:///{out}/study.db")


def _table(printed: str) -> dict[str, list[str]]:
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("run "))
    rows = [line.split() for line in lines[start + 1 :] if line.startswith("trial-")]
    return {row[0]: row for row in rows}


@pytest.mark.parametrize(
    "space, extra, message",
    [
        ("optim.max_lrr: {low: 0.004, high: 0.015}", [], "max_lrr"),
        ("train.ema_decay: {choices: [null, fast]}", [], "train.ema_decay"),
        ("optim.max_lr: {low: 0.015, high: 0.004}", [], "optim.max_lr: empty range"),
        (SPACE, ["--storage", "sqlite:////no/such/folder/study.db"], "sqlite:////no/such/folder"),
        (
            SPACE,
            ["--storage", "postgresql://me:secret@127.0.0.1:1/db"],
            "postgresql://me:***@127.0.0.1:1/db: cannot be opened",
        ),
        (SPACE, ["--storage", "nonsense"], "--storage nonsense: cannot be opened"),
        (SPACE, ["--seeds", "3"], "--seeds goes with --grid"),
        (SPACE, ["--grid", "optim.max_lr=0.01,0.02"], "one of the two"),
        (  # every key is tried at both ends: 10 batches of OneCycle cannot be scheduled
            "train.n_batch: {low: 10, high: 40}",
            ["train.eval_every=5"],
            "optim.pct_start=0.1 x train.n_batch=10 = 1",
        ),
    ],
)
def test_bad_search_input_stops_before_any_trial(tmp_path, capsys, space, extra, message):
    out = tmp_path / "sw"
    args = [
        "sweep",
        str(RUN_FILE),
        "--optuna",
        "3",
        "--space",
        str(_space(tmp_path, space)),
        "--out",
        str(out),
        *extra,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "secret" not in err
    assert not out.exists()


def test_storage_options_go_with_optuna_only(tmp_path, capsys):
    args = ["sweep", str(RUN_FILE), "--grid", "optim.max_lr=0.01", "--storage", "sqlite://"]
    assert main(args) == 2
    assert "--storage go with --optuna" in capsys.readouterr().err


@pytest.mark.slow
def test_a_study_prunes_lagging_trials_and_writes_its_best(prepared_dir, tmp_path, capsys):
    out = tmp_path / "sw"
    out.mkdir()
    study = optuna.create_study(
        study_name="run13_cpu_demo", storage=f"sqlite:///{out}/study.db", direction="minimize"
    )
    for lr, sd in [(0.01, 0.5), (0.00001, 0.5), (0.00001, 0.6)]:  # a useless LR after a good one
        study.enqueue_trial({"optim.max_lr": lr, "augment.white_noise_sd": sd})
    args = _args(prepared_dir, tmp_path, 3, out) + ["--prune-startup", "1"]
    assert main(args) == 0
    table = _table(capsys.readouterr().out)
    assert {k: row[2] for k, row in table.items()} == {
        "trial-0000": "finished",
        "trial-0001": "pruned",
        "trial-0002": "pruned",
    }
    assert table["trial-0000"][-2:] == ["0.01", "0.5"]  # the varied keys as columns
    states = [t.state for t in _study(out).trials]
    assert states == [optuna.trial.TrialState.COMPLETE] + [optuna.trial.TrialState.PRUNED] * 2
    pruned = json.loads((out / "trial-0001" / "run.json").read_text())
    assert pruned["pruned"] == {"step": 2}
    best = load_run(out / "best.yaml")
    assert best.optim.max_lr == 0.01 and best.augment.white_noise_sd == 0.5
    assert best.parent == str(RUN_FILE.resolve()) and best.train.n_batch == 9
    page = (out / "sweep.html").read_text()
    assert page.count('<tr class="pruned">') == 2 and "<td>finished</td>" in page
    assert "Verdicts" in page and "target_per" in page
    assert main(args) == 0  # the study is complete: nothing more runs
    assert "3 of 3 trials done" in capsys.readouterr().out
    assert len(_study(out).trials) == 3


@pytest.mark.slow
def test_an_interrupted_trial_is_continued_by_the_next_worker(prepared_dir, tmp_path, capsys):
    out = tmp_path / "sw"
    args = _args(prepared_dir, tmp_path, 1, out, **{"train.n_batch": 40, "train.eval_every": 10})
    first = out / "trial-0000"
    code, stdout, err = sigterm_when(args, [first], 12)
    assert code == EXIT_INTERRUPTED, err
    assert "search interrupted in trial-0000" in stdout
    assert json.loads((first / "run.json").read_text())["status"] == "interrupted"

    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "trial 1 -> " in printed and "trial-0000 (continued)" in printed
    assert "resumed from step" in (first / "train.log").read_text()
    assert _table(printed)["trial-0000"][2] == "finished"
    trials = _study(out).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].params == trials[1].params and trials[1].user_attrs["continues"] == 0
    assert not (out / "trial-0001").exists()


@pytest.mark.slow
def test_a_second_worker_joins_the_study(prepared_dir, tmp_path):
    out = tmp_path / "sw"
    args = _args(prepared_dir, tmp_path, 4, out, **{"train.n_batch": 24, "train.eval_every": 8})
    args += ["--prune-startup", "0"]
    first = subprocess.Popen(
        _cli(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (out / "trial-0000").is_dir() and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run(_cli(*args), env=ENV, capture_output=True, text=True, timeout=300)
    stdout, err = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err + second.stderr
    trials = _study(out).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 4 <= len(complete) <= 5 and len(trials) == len(complete)
    pids = {
        json.loads((out / t.user_attrs["folder"] / "run.json").read_text())["process"]["pid"]
        for t in complete
    }
    assert len(pids) == 2  # both workers ran trials of the one study
    assert "trial 0 -> " in stdout and "trial 0 -> " not in second.stdout


@pytest.mark.slow
def test_workers_on_this_machine_share_one_study(prepared_dir, tmp_path, capsys):
    out = tmp_path / "sw"
    args = _args(prepared_dir, tmp_path, 3, out) + [
        "--workers",
        "2",
        "--prune-startup",
        "0",
        "--sampler-seed",
        "4",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "started worker-1" in printed and "started worker-2" in printed
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert logs == ["worker-1.log", "worker-2.log"]
    trials = _study(out).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert 3 <= len(trials) <= 4
    assert len({t.user_attrs["folder"] for t in trials}) == len(trials)
    assert (out / "sweep.html").is_file() and (out / "best.yaml").is_file()


def test_a_trial_whose_values_cannot_be_run_fails_alone(tmp_path, capsys):
    from optuna.trial import FixedTrial

    from brain2text.sweep.search import RefusedTrial, _Objective, plan_search

    space = _space(tmp_path, "train.n_batch: {low: 9, high: 11}\n")  # both ends can be run
    plan = plan_search(
        RUN_FILE,
        space,
        3,
        overrides=["train.eval_every=3"],
        out_dir=tmp_path / "sw",
        storage=None,
        study_name=None,
        prune_startup=0,
    )
    failed: dict[str, str] = {}
    objective = _Objective(plan, optuna.create_study(), True, failed)
    with pytest.raises(RefusedTrial):
        objective(FixedTrial({"train.n_batch": 10}))  # 0.1 x 10: a one-batch OneCycle warm-up
    assert "optim.pct_start=0.1 x train.n_batch=10" in failed["trial-0000"]
    assert "trial 0 (trial-0000) refused" in capsys.readouterr().out
    assert not (tmp_path / "sw" / "trial-0000").exists()
