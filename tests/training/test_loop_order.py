"""The order of things inside a training step, seen through the real :func:`train`: the LR
logged for batch k is the one the optimizer used (before the schedule steps), the gradient norm
logged is the pre-clip one, and the update itself is made with the clipped gradient."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from brain2text.config import ModelConfig, RunConfig, load_run
from brain2text.model.ctc import ctc_losses
from brain2text.model.gru import GRUDecoder
from brain2text.runs.checkpoint import load_checkpoint
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train
from brain2text.training.optim import build_optimizer, lr_trajectory
from brain2text.training.step import backward_clipped, seed_everything
from tests.conftest import RUNS, tiny_overrides

CLIP = 1e-6  # far below any real gradient norm: every step is clipped


def tiny_config(prepared, **extra) -> RunConfig:
    return load_run(RUNS / "run13_cpu_demo.yaml", tiny_overrides(prepared, **extra))


def grad_norm(model: torch.nn.Module) -> float:
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()])
    ).item()


def test_logged_lr_is_the_schedules_and_grad_norm_is_pre_clip(prepared_dir, tmp_path):
    config = tiny_config(
        prepared_dir,
        **{
            "train.n_batch": 8,
            "train.eval_every": 4,
            "optim.schedule": "onecycle",
            "optim.max_lr": 0.01,
            "optim.pct_start": 0.3,
            "optim.div_factor": 5.0,
            "optim.final_div_factor": 50.0,
            "optim.grad_clip_norm": CLIP,
        },
    )
    train(config, tmp_path / "run", quiet=True)
    steps = [r for r in read_metrics(tmp_path / "run") if "train/loss" in r]
    expected = lr_trajectory(config.optim, 8)
    # a schedule that moves at every batch: an LR read after scheduler.step() would be shifted
    assert len(set(expected)) == 8 and expected[0] == pytest.approx(0.01 / 5.0)
    assert [r["step"] for r in steps] == list(range(8))
    assert [r["lr"] for r in steps] == expected
    # a post-clip norm would be <= CLIP; the pre-clip ones of this model are O(0.1-10)
    assert all(r["grad_norm"] > 1e4 * CLIP for r in steps), [r["grad_norm"] for r in steps]


def first_step_change(prepared, out, clip) -> tuple[float, float]:
    """The L2 norm of the weights' change made by a run's only step, and that step's LR.

    Adam's first update is ``lr * g / (|g| + eps)`` per weight (bias-corrected moments are g and
    g**2), so with ``eps = 1`` and no weight decay its norm is at most ``lr * ||g||``: with the
    gradient clipped to ``clip``, at most ``lr * clip``. (A constant LR: OneCycle over a single
    batch would start at its final LR.)"""
    config = tiny_config(
        prepared,
        **{
            "train.n_batch": 1,
            "train.eval_every": 1,
            "optim.eps": 1.0,
            "optim.l2_decay": 0.0,
            "optim.schedule": "constant",
            "optim.grad_clip_norm": "null" if clip is None else clip,
        },
    )
    train(config, out, quiet=True)
    after = load_checkpoint(out / "checkpoints" / "last.pt")
    assert after.step == 0
    seed_everything(config.train.seed)  # the loop seeds, then builds the model first thing
    before = GRUDecoder(config.model, n_days=len(after.days)).state_dict()
    change = torch.linalg.vector_norm(
        torch.stack(
            [
                torch.linalg.vector_norm(after.model[k].float() - v.float())
                for k, v in before.items()
            ]
        )
    ).item()
    (row,) = [r for r in read_metrics(out) if "train/loss" in r]
    return change, row["lr"]


def test_the_update_is_made_with_the_clipped_gradient(prepared_dir, tmp_path):
    clipped, lr = first_step_change(prepared_dir, tmp_path / "clipped", CLIP)
    free, lr_free = first_step_change(prepared_dir, tmp_path / "free", None)
    assert lr == lr_free == 0.005  # run13_cpu_demo's max_lr
    # float32 rounding of w + dw at most doubles a change it does not drop: hence the 2
    assert 0 < clipped <= 2 * lr * CLIP
    # the same step without clipping moves the weights by orders of magnitude more: the
    # bound above is not met by any update, and the initial weights were rebuilt right
    assert free > 1e3 * lr * CLIP


def test_backward_clipped_returns_the_pre_clip_norm_and_leaves_clipped_gradients():
    torch.manual_seed(0)
    config = ModelConfig(n_units=8, n_layers=1, kernel_len=4, stride_len=2, dropout=0.0)
    model = GRUDecoder(config, n_days=1, n_features=256)
    twin = copy.deepcopy(model)
    x, day = torch.randn(2, 30, 256), torch.zeros(2, dtype=torch.long)
    targets, target_lengths = torch.randint(1, 41, (2, 5)), torch.tensor([5, 3])
    n_out = model.output_lengths(torch.tensor([30, 24]))

    def loss_of(m: torch.nn.Module) -> torch.Tensor:
        return ctc_losses(m(x, day), n_out, targets, target_lengths).mean()

    loss_of(twin).backward()  # the reference: plain backward, no clipping
    unclipped = grad_norm(twin)
    optimizer = build_optimizer(model, load_run(RUNS / "run13_cpu_demo.yaml").optim)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    returned = backward_clipped(loss_of(model), model, scaler, optimizer, CLIP)
    assert unclipped > 1e4 * CLIP and math.isfinite(returned)
    assert returned == pytest.approx(unclipped, rel=1e-5)  # the norm before clipping
    assert grad_norm(model) <= CLIP * (1 + 1e-4)  # the gradients the optimizer will use
    scale = CLIP / (unclipped + 1e-6)  # clip_grad_norm_'s coefficient: same direction, shorter
    for p, q in zip(model.parameters(), twin.parameters(), strict=False):
        torch.testing.assert_close(p.grad, q.grad * scale, rtol=1e-4, atol=1e-12)


def test_backward_clipped_without_a_clip_leaves_gradients_alone():
    torch.manual_seed(1)
    model = GRUDecoder(ModelConfig(n_units=4, n_layers=1, kernel_len=4, dropout=0.0), n_days=1)
    twin = copy.deepcopy(model)
    x, day = torch.randn(1, 20, 256), torch.zeros(1, dtype=torch.long)
    twin(x, day).square().mean().backward()
    optimizer = build_optimizer(model, load_run(RUNS / "run13_cpu_demo.yaml").optim)
    returned = backward_clipped(
        model(x, day).square().mean(),
        model,
        torch.amp.GradScaler("cpu", enabled=False),
        optimizer,
        None,
    )
    assert returned == pytest.approx(grad_norm(twin), rel=1e-5)
    for p, q in zip(model.parameters(), twin.parameters(), strict=False):
        assert torch.equal(p.grad, q.grad)
