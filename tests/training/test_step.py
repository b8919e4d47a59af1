"""One training step: gradient accumulation gives the gradient of the whole batch."""

import numpy as np
import pytest
import torch

from brain2text.config import load_run
from brain2text.data.batches import collate
from brain2text.data.dataset import open_prepared
from brain2text.distributed import Dist
from brain2text.errors import ConfigError
from brain2text.model.gru import GRUDecoder
from brain2text.training.optim import build_optimizer
from brain2text.training.step import build_scaler, micro_batches, train_step
from tests.conftest import RUNS, tiny_overrides

QUIET = {
    "augment.white_noise_sd": 0,
    "augment.constant_offset_sd": 0,
    "model.dropout": 0,
    "augment.time_mask_prob": 0,
    "augment.freq_mask_prob": 0,
    "model.n_layers": 2,
}


def _gradients(prepared_dir, accum: int) -> tuple[list[torch.Tensor], float]:
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(prepared_dir, **{**QUIET, "train.batch_size": 8, "train.grad_accum": accum}),
    )
    split = open_prepared(prepared_dir).split("train")
    batch = collate(split, np.arange(8))
    torch.manual_seed(0)
    model = GRUDecoder(config.model, n_days=3)
    optimizer = build_optimizer(model, config.optim)
    result = train_step(
        model,
        model,
        batch,
        config,
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        optimizer,
        build_scaler(config, torch.device("cpu")),
        None,
        Dist(),
        False,
    )
    return [p.grad.clone() for p in model.parameters()], result.loss


def test_two_micro_batches_give_the_gradient_of_the_whole_batch(prepared_dir):
    whole, loss_whole = _gradients(prepared_dir, 1)
    halves, loss_halves = _gradients(prepared_dir, 2)
    quarters, _ = _gradients(prepared_dir, 4)
    assert loss_halves == pytest.approx(loss_whole, rel=1e-6)
    for a, b, c in zip(whole, halves, quarters, strict=False):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
        torch.testing.assert_close(c, a, rtol=0, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(whole, halves, strict=False))  # really another sum


def test_micro_batches_keep_the_whole_batch_padding(prepared_dir):
    split = open_prepared(prepared_dir).split("train")
    batch = collate(split, np.arange(6))
    parts = micro_batches(batch, 3)
    assert [p.features.shape for p in parts] == [(2, *batch.features.shape[1:])] * 3
    assert torch.equal(torch.cat([p.features for p in parts]), batch.features)
    assert torch.equal(torch.cat([p.trial_ids for p in parts]), batch.trial_ids)
    assert micro_batches(batch, 1) == [batch]


def test_a_batch_that_cannot_be_cut_evenly_is_refused():
    with pytest.raises(
        ConfigError,
        match="train.batch_size=6 cannot be cut into train.grad_accum=4 equal micro-batches",
    ):
        load_run(RUNS / "run13_cpu_demo.yaml", ["train.batch_size=6", "train.grad_accum=4"])


def test_full_run16_5_builds_and_takes_one_accumulated_bf16_step():
    """The full-size series best: 2 micro-batches, bf16 autocast, EMA, clipping at 1.0."""
    from brain2text.data.batches import Batch
    from brain2text.training.step import build_ema

    config = load_run("run16_5_ema_warmcos", ["train.batch_size=2"])
    assert (config.train.grad_accum, config.train.use_amp, config.optim.grad_clip_norm) == (
        2,
        True,
        1.0,
    )
    torch.manual_seed(0)
    model = GRUDecoder(config.model, n_days=24)
    optimizer = build_optimizer(model, config.optim)
    ema = build_ema(model, config.train.ema_decay)
    n_bins = torch.tensor([120, 100])
    batch = Batch(
        torch.randn(2, 120, 256),
        n_bins,
        torch.randint(1, 41, (2, 10)),
        torch.tensor([10, 8]),
        torch.tensor([0, 23]),
        torch.tensor([0, 1]),
    )
    before = model.readout.weight.detach().clone()
    result = train_step(
        model,
        model,
        batch,
        config,
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        optimizer,
        build_scaler(config, torch.device("cpu")),
        ema,
        Dist(),
        False,
    )
    assert result.problem is None and np.isfinite(result.loss) and result.grad_norm > 0
    assert not torch.equal(before, model.readout.weight)
    assert int(ema.n_averaged) == 1
