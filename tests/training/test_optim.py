import math

import pytest
import torch

from brain2text.config import OptimConfig, load_run
from brain2text.training.optim import (
    build_optimizer,
    build_scheduler,
    linear_factor,
    lr_trajectory,
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
    p = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([p], c.optim)
    sched = build_scheduler(opt, c.optim, 100)
    for _ in range(50):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    cycling = c.optim.model_copy(update={"cycle_momentum": True})
    opt = build_optimizer([p], cycling)
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
    assert all(a >= b for a, b in zip(wc[9:], wc[10:]))  # monotone decay after warm-up


def test_factor_functions_are_pure():
    assert linear_factor(0, 10, 0.5) == 1.0 and linear_factor(9, 10, 0.5) == 0.5
    assert warmup_cosine_factor(0, 0, 10, 0.0) == 1.0
    assert warmup_cosine_factor(9, 0, 10, 0.0) == pytest.approx(0.0, abs=1e-12)
