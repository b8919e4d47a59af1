"""One training step: gradient accumulation gives the gradient of the whole batch, bf16
autocast stays close to fp32, and the CPU flushes subnormal floats."""

import numpy as np
import pytest
import torch

from brain2text.config import load_run
from brain2text.data.batches import collate
from brain2text.data.dataset import open_prepared
from brain2text.distributed import Dist
from brain2text.errors import ConfigError
from brain2text.model.gru import GRUDecoder
from brain2text.model.precision import denormals_flushed, flush_denormals
from brain2text.training.optim import build_optimizer
from brain2text.training.step import (
    Learner,
    StepOptions,
    StepResult,
    build_ema,
    build_scaler,
    micro_batches,
    train_step,
)
from tests.conftest import RUNS, tiny_overrides

QUIET = {
    "augment.white_noise_sd": 0,
    "augment.constant_offset_sd": 0,
    "model.dropout": 0,
    "augment.time_mask_prob": 0,
    "augment.freq_mask_prob": 0,
    "model.n_layers": 2,
}


def _step(config, model, batch, ema=None) -> StepResult:
    """One step of training's own :func:`train_step` on ``model`` (CPU, one process)."""
    cpu = torch.device("cpu")
    learner = Learner(
        model,
        model,
        build_optimizer(model, config.optim),
        build_scaler(config, cpu),
        StepOptions.of_run(config),
        torch.Generator().manual_seed(0),
        ema,
        Dist(),
    )
    return train_step(learner, batch)


def _gradients(
    prepared_dir, accum: int, **extra
) -> tuple[list[torch.Tensor], StepResult, GRUDecoder]:
    config = load_run(
        RUNS / "run13_cpu_demo.yaml",
        tiny_overrides(
            prepared_dir,
            **{**QUIET, "train.batch_size": 8, "train.grad_accum": accum, **extra},
        ),
    )
    split = open_prepared(prepared_dir).split("train")
    batch = collate(split, np.arange(8))
    torch.manual_seed(0)
    model = GRUDecoder(config.model, n_days=3)
    result = _step(config, model, batch)
    return [p.grad.clone() for p in model.parameters()], result, model


def test_two_micro_batches_give_the_gradient_of_the_whole_batch(prepared_dir):
    whole, result_whole, _ = _gradients(prepared_dir, 1)
    halves, result_halves, _ = _gradients(prepared_dir, 2)
    quarters, _, _ = _gradients(prepared_dir, 4)
    assert result_halves.loss == pytest.approx(result_whole.loss, rel=1e-6)
    for a, b, c in zip(whole, halves, quarters, strict=False):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
        torch.testing.assert_close(c, a, rtol=0, atol=1e-6)
    assert any(
        not torch.equal(a, b) for a, b in zip(whole, halves, strict=False)
    )  # really another sum


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


def test_bf16_step_is_close_to_the_fp32_step(prepared_dir):
    """bf16 autocast on the CPU: the same batch from the same weights gives a loss within
    1e-3 (relative) of fp32's, a gradient pointing the same way (cosine > 0.999) and of the
    same norm within 1e-3; and not the very same numbers (the autocast ran)."""
    fp32, exact, _ = _gradients(prepared_dir, 1, **{"model.n_layers": 2})
    bf16, mixed, _ = _gradients(
        prepared_dir, 1, **{"model.n_layers": 2, "train.use_amp": "true", "train.amp_dtype": "bf16"}
    )
    assert exact.problem is None and mixed.problem is None
    assert mixed.loss == pytest.approx(exact.loss, rel=1e-3)
    assert mixed.grad_norm == pytest.approx(exact.grad_norm, rel=1e-3)
    a, b = torch.cat([g.flatten() for g in fp32]), torch.cat([g.flatten() for g in bf16])
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.999
    assert mixed.loss != exact.loss


def test_full_run16_5_builds_and_takes_one_accumulated_bf16_step():
    """The full-size series best: 2 micro-batches, bf16 autocast, EMA, clipping at 1.0."""
    from brain2text.data.batches import Batch

    config = load_run("run16_5_ema_warmcos", ["train.batch_size=2"])
    assert (config.train.grad_accum, config.train.use_amp, config.optim.grad_clip_norm) == (
        2,
        True,
        1.0,
    )
    torch.manual_seed(0)
    model = GRUDecoder(config.model, n_days=24)
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
    result = _step(config, model, batch, ema)
    assert result.problem is None and np.isfinite(result.loss) and result.grad_norm > 0
    assert not torch.equal(before, model.readout.weight)
    assert int(ema.n_averaged) == 1


def test_flush_denormals_flushes_subnormals_and_says_so():
    tiny = torch.ones(70_000, dtype=torch.int32).view(torch.float32)  # 1.4e-45, subnormal
    try:
        assert flush_denormals(False) is False
        assert torch.count_nonzero(tiny * 1.0) == len(tiny)  # IEEE: they survive
        assert flush_denormals(True) is True
        assert torch.count_nonzero(tiny * 1.0) == 0  # read as zeros
        assert (torch.tensor([1e-30]) * 1.0).item() == pytest.approx(1e-30)  # normals stay
    finally:
        torch.set_flush_denormal(False)  # torch's default


def test_the_flushed_block_gives_the_thread_its_mode_back():
    tiny = torch.ones(1, dtype=torch.int32).view(torch.float32)
    with denormals_flushed(True) as flushed:
        assert flushed and (tiny * 1.0).item() == 0.0
        with denormals_flushed(False) as inner:
            assert not inner and (tiny * 1.0).item() > 0.0
        assert (tiny * 1.0).item() == 0.0  # the outer block's mode again
    assert (tiny * 1.0).item() > 0.0  # and IEEE subnormals after it, as before
