import dataclasses
import json
import math

import pytest

from brain2text.config import load_run
from brain2text.reports.report import write_report
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train
from brain2text.training.watch import GRAD_NORM, NONFINITE, TREND, InstabilityWatch
from tests.conftest import RUNS, tiny_overrides


def onecycle_warmup_lr(step: int, max_lr: float = 0.01, div: float = 25.0, warm: int = 1000):
    """Run #13's LR during OneCycle's cosine warm-up (0.0004 -> 0.01 over 1000 batches)."""
    start = max_lr / div
    return start + (max_lr - start) * (1 - math.cos(math.pi * step / (warm - 1))) / 2


def feed(watch, evals, grad_norm, eval_every=100, lr=onecycle_warmup_lr):
    """Feed batches 0..last eval step and an evaluation after every ``eval_every`` batches;
    ``evals``: [(loss, PER)...]; returns every warning raised, in order."""
    out = []
    for step in range(eval_every * len(evals)):
        out += watch.on_batch(step, lr(step), 2.0, grad_norm(step))
        if (step + 1) % eval_every == 0:
            loss, per = evals[(step + 1) // eval_every - 1]
            out += watch.on_eval(step, lr(step), loss, per)
    return out


# FACTS §4: PER 0.48 at batch 100, 0.38 at 200, then rising at every evaluation as the LR
# warmed past ~0.002, to 0.73 at batch 900 with a grad norm peak of 20.7 there
RUN13_EVALS = [
    (1.60, 0.48),
    (1.20, 0.38),
    (1.30, 0.43),
    (1.45, 0.48),
    (1.60, 0.53),
    (1.75, 0.58),
    (1.90, 0.63),
    (2.05, 0.68),
    (2.20, 0.73),
]


def run13_grad_norm(step: int) -> float:
    if step == 899:
        return 20.7
    return 1.0 if step < 200 else 1.0 + 4.0 * (step - 200) / 700  # rising with the LR


def test_run13_pattern_fires_at_the_third_evaluation_of_the_rise():
    watch = InstabilityWatch(trend_evals=3, grad_norm_ceiling=10.0)
    warnings = feed(watch, RUN13_EVALS, run13_grad_norm)
    trend = [w for w in warnings if w.kind == TREND]
    # window (199, 299, 399): loss and PER rose twice while the LR rose 0.0013 -> 0.0037
    assert [w.step for w in trend] == [399, 499, 599, 699, 799, 899]
    assert 0.0036 < trend[0].lr < 0.0038
    assert "since step 199" in trend[0].message and "PER 0.38 -> 0.48" in trend[0].message
    assert [(w.step, w.kind) for w in warnings if w.kind != TREND] == [(899, GRAD_NORM)]
    assert watch.trend_streak == 6 and watch.stop_reason is None  # stop_after not set
    with pytest.raises(dataclasses.FrozenInstanceError):
        trend[0].step = 0


def test_stop_after_counts_trend_evaluations_in_a_row():
    watch = InstabilityWatch(trend_evals=3, stop_after=2)
    for i, (loss, per) in enumerate(RUN13_EVALS[:4]):
        watch.on_batch(100 * i, onecycle_warmup_lr(100 * i), 2.0, run13_grad_norm(100 * i + 99))
        watch.on_eval(100 * i + 99, onecycle_warmup_lr(100 * i + 99), loss, per)
    assert watch.trend_streak == 1 and watch.stop_reason is None  # first trend at 399
    watch.on_batch(499, onecycle_warmup_lr(499), 2.0, 3.0)
    watch.on_eval(499, onecycle_warmup_lr(499), 1.6, 0.53)
    assert watch.stop_reason == "2 evaluations in a row with a trend warning (watch.stop_after=2)"
    watch.on_batch(599, onecycle_warmup_lr(599), 2.0, 3.0)
    watch.on_eval(599, onecycle_warmup_lr(599), 1.5, 0.50)  # the trend breaks: the count resets
    assert watch.trend_streak == 0 and watch.stop_reason is None


def test_a_healthy_run_stays_quiet():
    evals = [(2.0 - 0.1 * i, 0.6 - 0.03 * i) for i in range(9)]
    watch = InstabilityWatch(trend_evals=3, grad_norm_ceiling=10.0)
    assert feed(watch, evals, lambda step: 1.0 + step / 900) == []  # LR and grad norms rising


def test_rising_loss_with_a_falling_or_constant_lr_is_not_the_trend():
    for lr in (lambda step: 0.01 * (1 - step / 1000), lambda step: 0.005):  # falling, flat
        watch = InstabilityWatch(trend_evals=3)
        assert feed(watch, RUN13_EVALS, run13_grad_norm, lr=lr) == []


def test_the_trend_needs_loss_per_and_grad_norms_to_rise():
    per_flat = [(loss, 0.40) for loss, _ in RUN13_EVALS]
    assert feed(InstabilityWatch(), per_flat, run13_grad_norm) == []
    assert feed(InstabilityWatch(), RUN13_EVALS, lambda step: 2.0) == []  # flat grad norms
    tiny_rise = [(1.0 + 0.001 * i, 0.40 + 0.001 * i) for i in range(9)]  # below min_rel_rise
    assert feed(InstabilityWatch(), tiny_rise, run13_grad_norm) == []
    assert feed(InstabilityWatch(min_rel_rise=0.0), tiny_rise, run13_grad_norm) != []


def test_grad_norm_ceiling_is_reported_once_per_evaluation_interval():
    watch = InstabilityWatch(grad_norm_ceiling=10.0)
    norms = [12.0, 15.0, 11.0, 3.0, 10.0, 20.0]  # evaluations after batches 2 and 5
    warnings = []
    for step, norm in enumerate(norms):
        warnings += watch.on_batch(step, 0.01, 1.0, norm)
        if step in (2, 5):
            warnings += watch.on_eval(step, 0.01, 1.0, 0.5)
    assert [(w.step, w.kind) for w in warnings] == [(0, GRAD_NORM), (4, GRAD_NORM)]
    assert "pre-clip gradient norm 12 >= ceiling 10" in warnings[0].message
    assert feed(InstabilityWatch(), RUN13_EVALS[:2], lambda step: 1e6) == []  # no ceiling set


def test_nonfinite_loss_or_gradient_is_a_warning_and_not_averaged():
    watch = InstabilityWatch()
    assert watch.on_batch(0, 0.01, 2.0, 1.0) == []
    [w] = watch.on_batch(1, 0.02, math.nan, math.nan, skipped=True)
    assert (w.step, w.lr, w.kind, w.message) == (
        1,
        0.02,
        NONFINITE,
        "non-finite loss nan; step skipped",
    )
    [w] = watch.on_batch(2, 0.03, 2.0, math.inf, skipped=True)
    assert w.message == "non-finite gradient norm inf; step skipped"
    watch.on_eval(2, 0.03, 1.0, 0.5)
    assert watch._evals[-1].grad_mean == 1.0  # only the finite norm
    assert len(watch.warnings) == 2
    with pytest.raises(ValueError, match="trend_evals=1"):
        InstabilityWatch(trend_evals=1)


# ----------------------------------------------------------------------------- through training


def test_diverging_run_warns_stops_early_and_keeps_best(prepared_dir, tmp_path):
    # the LR rises linearly from 0.001 to 1.0: eval loss and PER climb within a few evaluations
    over = tiny_overrides(
        prepared_dir,
        **{
            "optim.schedule": "linear",
            "optim.max_lr": 0.001,
            "optim.end_lr": 1.0,
            "train.n_batch": 24,
            "train.eval_every": 2,
            "watch.trend_evals": 2,
            "watch.stop_after": 1,
            "watch.grad_norm_ceiling": 2.0,
        },
    )
    outcome = train(load_run(RUNS / "run13_cpu_demo.yaml", over), tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    rows = read_metrics(run)
    warnings = [r for r in rows if "warning" in r]
    kinds = {r["warning"] for r in warnings}
    assert {TREND, GRAD_NORM} <= kinds
    assert all(set(r) == {"step", "warning", "message", "lr"} for r in warnings)
    trend = next(r for r in warnings if r["warning"] == TREND)
    log = (run / "train.log").read_text()
    assert f"WARNING step {trend['step']} (lr {trend['lr']:.3g}): eval loss" in log
    assert f"stopping early at step {trend['step']}" in log
    # stopped at the first trend warning, long before the last batch (23)
    assert max(r["step"] for r in rows if "train/loss" in r) == trend["step"] < 20
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "stopped early"
    assert record["stopped_early"]["step"] == trend["step"]
    assert record["stopped_early"]["best_step"] == outcome.best.step < trend["step"]
    assert outcome.status == "stopped early"
    assert outcome.best.stopped_early.to_dict() == record["stopped_early"]
    assert (run / "checkpoints" / "best.pt").is_file()
    page = write_report(run).read_text()
    assert (
        "Instability watch" in page and "stopped early" in page and "the LR may be too high" in page
    )


def test_healthy_tiny_run_has_no_warning(prepared_dir, tmp_path):
    # default watch settings except the ceiling: the tiny model's first gradient norm (~10)
    # is above Run #13's ceiling of 10, which is meant for the full model
    over = tiny_overrides(
        prepared_dir, **{"train.n_batch": 12, "train.eval_every": 2, "watch.grad_norm_ceiling": 100}
    )
    train(load_run(RUNS / "run13_cpu_demo.yaml", over), tmp_path / "run", quiet=True)
    assert not [r for r in read_metrics(tmp_path / "run") if "warning" in r]
    assert "WARNING" not in (tmp_path / "run" / "train.log").read_text()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"


def test_state_dict_round_trip_continues_identically():
    def feed(watch, steps):
        out = []
        for step in steps:
            out += watch.on_batch(step, 0.001 * (step + 1), 1.0, 5.0 + step * 3)
            if step % 2 == 1:
                out += watch.on_eval(step, 0.001 * (step + 1), 1.0 + step, 0.5 + step / 10)
        return out

    whole = InstabilityWatch(trend_evals=2, grad_norm_ceiling=12.0, stop_after=3)
    expected = feed(whole, range(12))
    first = InstabilityWatch(trend_evals=2, grad_norm_ceiling=12.0, stop_after=3)
    got = feed(first, range(5))
    state = json.loads(json.dumps(first.state_dict()))  # plain lists and numbers
    second = InstabilityWatch(trend_evals=2, grad_norm_ceiling=12.0, stop_after=3)
    second.load_state_dict(state)
    got += feed(second, range(5, 12))
    assert got == expected and second.warnings == whole.warnings
    assert second.stop_reason == whole.stop_reason and whole.stop_reason is not None
