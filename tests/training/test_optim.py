import math

import pytest
import torch

from brain2text.config import OptimConfig, load_run
from brain2text.sections import step_boundary
from brain2text.training.optim import (
    build_optimizer,
    build_scheduler,
    day_drift_penalty,
    linear_factor,
    lr_trajectory,
    step_factor,
    summarize,
    warmup_cosine_factor,
)
from tests.conftest import RUNS


@pytest.fixture(scope="module")
def run13_lrs():
    c = load_run(RUNS / "run13_onecycle_safe.yaml")
    return lr_trajectory(c.optim, c.train.n_batch)


def test_onecycle_matches_the_note_at_start_and_peak(run13_lrs):
    assert run13_lrs[0] == pytest.approx(0.0004, rel=1e-9)
    assert run13_lrs[999] == pytest.approx(0.01, rel=1e-9)
    assert run13_lrs[1000] == pytest.approx(0.01, rel=1e-6)
    assert max(run13_lrs) == pytest.approx(0.01, rel=1e-12)


def test_onecycle_really_ends_at_initial_over_final_div(run13_lrs):
    # torch: initial_lr / final_div_factor = 0.01 / 25 / 1000, not the note's 0.01 / 1000
    assert run13_lrs[9999] == pytest.approx(4e-7, rel=1e-6)
    assert not math.isclose(run13_lrs[9999], 1e-5, rel_tol=0.1)


def test_summary_shows_the_derived_lrs():
    c = load_run(RUNS / "run13_onecycle_safe.yaml")
    s = summarize(c.optim, c.train.n_batch)
    assert (s.peak_batch, s.n_batch) == (999, 10000)
    assert s.first == pytest.approx(4e-4) and s.last == pytest.approx(4e-7)
    assert "4e-07" in "\n".join(s.lines())


def test_momentum_cycling_is_off_unless_asked():
    c = load_run(RUNS / "run13_onecycle_safe.yaml")
    p = torch.nn.Linear(1, 1)
    opt = build_optimizer(p, c.optim)
    sched = build_scheduler(opt, c.optim, 100)
    for _ in range(50):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    cycling = c.optim.model_copy(update={"cycle_momentum": True})
    opt = build_optimizer(p, cycling)
    build_scheduler(opt, cycling, 100)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)


def test_constant_linear_and_warmup_cosine_edges():
    assert lr_trajectory(OptimConfig(max_lr=0.02), 5) == pytest.approx([0.02] * 5)
    lin = lr_trajectory(OptimConfig(max_lr=0.02, schedule="linear", end_lr=0.002), 10)
    assert lin[0] == pytest.approx(0.02) and lin[-1] == pytest.approx(0.002)
    cfg = OptimConfig(max_lr=0.01, schedule="warmup_cosine", warmup_batches=10, end_lr=1e-4)
    wc = lr_trajectory(cfg, 100)
    assert wc[0] == pytest.approx(0.001) and wc[9] == pytest.approx(0.01)
    assert wc[-1] == pytest.approx(1e-4)
    assert all(
        a >= b for a, b in zip(wc[9:], wc[10:], strict=False)
    )  # monotone decay after warm-up


def test_factor_functions_are_pure():
    assert linear_factor(0, 10, 0.5) == 1.0 and linear_factor(9, 10, 0.5) == 0.5
    assert warmup_cosine_factor(0, 0, 10, 0.0) == 1.0
    assert warmup_cosine_factor(9, 0, 10, 0.0) == pytest.approx(0.0, abs=1e-12)


class _WithDays(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.day_weights = torch.nn.Parameter(torch.ones(2, 3, 3))
        self.day_biases = torch.nn.Parameter(torch.zeros(2, 1, 3))
        self.gru = torch.nn.Linear(3, 3)


def _lrs(opt, sched, n):
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return out


def test_the_day_layers_get_their_own_group_lr_and_weight_decay():
    c = OptimConfig(
        optimizer="adamw",
        max_lr=5e-3,
        end_lr=1e-4,
        l2_decay=1e-3,
        schedule="warmup_cosine",
        warmup_batches=10,
        day_max_lr=2e-3,
        day_end_lr=5e-5,
        day_weight_decay=0.0,
    )
    model = _WithDays()
    opt = build_optimizer(model, c)
    rest, day = opt.param_groups
    assert {id(p) for p in day["params"]} == {id(model.day_weights), id(model.day_biases)}
    assert [id(p) for p in rest["params"]] == [id(p) for p in model.gru.parameters()]
    assert rest["weight_decay"] == 1e-3 and day["weight_decay"] == 0.0
    lrs = _lrs(opt, build_scheduler(opt, c, 100), 100)
    assert max(r[0] for r in lrs) == pytest.approx(5e-3) and lrs[-1][0] == pytest.approx(1e-4)
    assert max(r[1] for r in lrs) == pytest.approx(2e-3) and lrs[-1][1] == pytest.approx(5e-5)
    assert lrs[0] == pytest.approx([5e-3 / 10, 2e-3 / 10])  # one warm-up, both groups


def test_one_group_unless_a_day_key_is_set():
    opt = build_optimizer(_WithDays(), OptimConfig())
    assert len(opt.param_groups) == 1


def test_onecycle_cannot_end_the_day_group_elsewhere():
    with pytest.raises(ValueError, match="optim.day_end_lr: onecycle"):
        OptimConfig(schedule="onecycle", day_end_lr=1e-5)


def test_plateau_halves_the_lr_after_patience_evaluations_without_improvement():
    c = OptimConfig(
        schedule="plateau", max_lr=8e-4, plateau_patience=2, plateau_factor=0.5, end_lr=3e-4
    )
    model = torch.nn.Linear(1, 1)
    opt = build_optimizer(model, c)
    sched = build_scheduler(opt, c, 1000)
    seen = []
    for per in [0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]:
        sched.step(per)
        seen.append(opt.param_groups[0]["lr"])
    assert seen[:4] == [8e-4] * 4  # improved, then 2 evaluations of patience
    assert seen[4] == pytest.approx(4e-4)  # the third without improvement halves it
    assert seen[-1] == pytest.approx(3e-4)  # never below end_lr
    assert lr_trajectory(c, 5) == [8e-4] * 5  # `config` shows the ceiling


# ------------------------------------------------------------------------------ step schedule


def test_step_keeps_max_lr_until_its_batch_then_multiplies_it():
    c = OptimConfig(schedule="step", max_lr=2e-3, step_at=0.6, step_factor=0.1)
    lrs = lr_trajectory(c, 400)
    assert step_boundary(0.6, 400) == 240  # 0.6 x 400 is 240.00000000000003 in floats
    assert lrs[:240] == pytest.approx([2e-3] * 240, rel=1e-12)  # batch 239: still max_lr
    assert lrs[240] == pytest.approx(2e-4, rel=1e-12)  # batch 240: the first lowered
    assert lrs[240:] == pytest.approx([2e-4] * 160, rel=1e-12)
    assert lr_trajectory(c.model_copy(update={"step_at": 0.5}), 5) == pytest.approx(
        [2e-3, 2e-3, 2e-3, 2e-4, 2e-4]  # 2.5: batches 0, 1, 2 before it
    )
    s = summarize(c, 400)
    assert (s.first, s.peak, s.last) == pytest.approx((2e-3, 2e-3, 2e-4))


def test_step_lowers_both_groups_at_the_same_batch():
    c = OptimConfig(schedule="step", max_lr=1e-3, day_max_lr=5e-3, step_at=0.3, step_factor=0.5)
    model = _WithDays()
    opt = build_optimizer(model, c)
    lrs = _lrs(opt, build_scheduler(opt, c, 10), 10)
    assert lrs[2] == pytest.approx([1e-3, 5e-3]) and lrs[3] == pytest.approx([5e-4, 2.5e-3])


def test_step_factor_is_pure():
    assert [step_factor(i, 3, 0.1) for i in range(5)] == [1.0, 1.0, 1.0, 0.1, 0.1]


def test_step_cannot_end_the_day_group_elsewhere():
    with pytest.raises(ValueError, match="optim.day_end_lr: step ends every group"):
        OptimConfig(schedule="step", day_end_lr=1e-5)


def test_a_step_past_the_last_batch_is_refused():
    from brain2text.errors import ConfigError

    base = ["optim.schedule=step", "train.n_batch=10", "train.eval_every=5"]
    load_run(RUNS / "baseline.yaml", [*base, "optim.step_at=0.9"])  # batch 9: the last one
    with pytest.raises(ConfigError, match=r"optim.step_at=0.95 x train.n_batch=10: .* never"):
        load_run(RUNS / "baseline.yaml", [*base, "optim.step_at=0.95"])


# -------------------------------------------------------------------------------- day drift


def test_day_drift_is_zero_for_identical_days_and_one_day():
    w = torch.randn(1, 4, 4).repeat(3, 1, 1)
    b = torch.randn(1, 1, 4).repeat(3, 1, 1)
    assert day_drift_penalty(w, b).item() == 0.0
    assert day_drift_penalty(torch.randn(1, 4, 4), torch.randn(1, 1, 4)).item() == 0.0


def test_day_drift_sums_squared_steps_between_adjacent_days_only():
    w = torch.zeros(3, 2, 2)
    w[1] = 1.0  # day 0 -> 1: 4 entries of 1; day 1 -> 2: 4 entries of -1
    b = torch.zeros(3, 1, 2)
    b[2, 0, 0] = 3.0  # day 1 -> 2: one entry of 3
    assert day_drift_penalty(w, b).item() == pytest.approx(4 + 4 + 9)
    # days 0 and 2 are no neighbours: 1 + 1, not the 1 + 1 + 4 of every pair
    line = torch.tensor([0.0, 1.0, 2.0]).reshape(3, 1, 1)
    assert day_drift_penalty(line, torch.zeros(3, 1, 1)).item() == pytest.approx(2.0)


def test_day_drift_gradient_pulls_neighbours_together():
    w = torch.tensor([[[0.0]], [[2.0]], [[2.0]]], requires_grad=True)
    b = torch.zeros(3, 1, 1, requires_grad=True)
    day_drift_penalty(w, b).backward()
    assert w.grad.flatten().tolist() == pytest.approx([-4.0, 4.0, 0.0])  # 2(w0-w1), 2(w1-w0)
    with torch.no_grad():
        w -= 0.1 * w.grad
    assert (w[1] - w[0]).abs().item() < 2.0  # one descent step: closer
