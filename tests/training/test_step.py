"""One training step: gradient accumulation gives the gradient of the whole batch, bf16
autocast stays close to fp32, and the CPU flushes subnormal floats."""

import numpy as np
import pytest
import torch

from brain2text.config import load_run
from brain2text.data.batches import Batch, collate
from brain2text.data.dataset import open_prepared
from brain2text.distributed import Dist
from brain2text.errors import ConfigError
from brain2text.model.factory import new_model
from brain2text.model.gru import GRUDecoder
from brain2text.model.precision import denormals_flushed, flush_denormals
from brain2text.training.optim import build_optimizer, day_drift_penalty
from brain2text.training.step import (
    Learner,
    StepOptions,
    StepResult,
    batch_loss,
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


# ------------------------------------------- heavy time masking's token, and the day drift


def _tiny_batch(n_days: int = 3, n_features: int = 16) -> Batch:
    g = torch.Generator().manual_seed(5)
    return Batch(
        torch.randn(4, 60, n_features, generator=g),
        torch.tensor([60, 55, 48, 40]),
        torch.randint(1, 41, (4, 6), generator=g),
        torch.tensor([6, 5, 4, 3]),
        torch.tensor([0, 1, 2, 1]) % n_days,
        torch.arange(4),
    )


def _tiny_config(*extra: str):
    return load_run(
        RUNS / "run13_timemask_cpu.yaml",
        [
            "model.n_units=8",
            "model.n_layers=1",
            "model.kernel_len=8",
            "model.dropout=0",
            "augment.white_noise_sd=0",
            "augment.constant_offset_sd=0",
            "optim.grad_clip_norm=null",
            *extra,
        ],
    )


def test_the_learned_mask_token_is_trained():
    config = _tiny_config("augment.time_masks.fill=learned")
    torch.manual_seed(0)
    model = new_model(config, n_days=3, n_features=16)
    assert model.mask_token is not None and "mask_token" in model.state_dict()
    loss = batch_loss(model, _tiny_batch(), StepOptions.of_run(config), torch.Generator())
    loss.backward()
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    before = model.mask_token.detach().clone()
    result = _step(config, model, _tiny_batch())
    assert result.problem is None and not torch.equal(before, model.mask_token)


def test_zero_filled_masks_build_no_mask_token():
    config = _tiny_config()
    assert config.augment.time_masks is not None and config.augment.time_masks.fill == "zero"
    model = new_model(config, n_days=3, n_features=16)
    assert model.mask_token is None
    assert not any("mask_token" in k for k in model.state_dict())


def _day_gradient(config, drift: float) -> tuple[torch.Tensor, StepResult]:
    torch.manual_seed(0)
    model = new_model(config, n_days=3, n_features=16)
    with torch.no_grad():
        model.day_weights[1] += 0.05 * torch.randn(16, 16)  # the days now differ
        model.day_biases[2] += 0.1
    options = StepOptions.of_run(config)
    options = StepOptions(**{**options.__dict__, "day_drift_l2": drift})
    learner = Learner(
        model,
        model,
        build_optimizer(model, config.optim),
        build_scaler(config, torch.device("cpu")),
        options,
        torch.Generator().manual_seed(0),
    )
    result = train_step(learner, _tiny_batch())
    assert model.day_weights.grad is not None
    return model.day_weights.grad.clone(), result


def test_day_drift_adds_its_gradient_once_and_leaves_the_reported_loss():
    config = _tiny_config("train.batch_size=4", "train.grad_accum=2")
    plain, plain_result = _day_gradient(config, 0.0)
    drifted, drift_result = _day_gradient(config, 0.01)
    assert drift_result.loss == pytest.approx(plain_result.loss, rel=1e-6)  # CTC alone
    torch.manual_seed(0)
    reference = new_model(config, n_days=3, n_features=16)
    with torch.no_grad():
        reference.day_weights[1] += 0.05 * torch.randn(16, 16)
        reference.day_biases[2] += 0.1
    (0.01 * day_drift_penalty(reference.day_weights, reference.day_biases)).backward()
    torch.testing.assert_close(drifted - plain, reference.day_weights.grad, rtol=1e-4, atol=1e-7)
    assert (drifted - plain).abs().sum() > 0


def test_day_drift_comes_from_the_run_config():
    assert StepOptions.of_run(_tiny_config("optim.day_drift_l2=0.01")).day_drift_l2 == 0.01
    assert StepOptions.of_run(_tiny_config()).day_drift_l2 == 0.0


@pytest.mark.parametrize("layers", ["shared", "none"])
def test_day_drift_needs_a_layer_per_day(layers):
    with pytest.raises(ConfigError, match=r"optim.day_drift_l2=0.01 .* model.day_layers="):
        _tiny_config("optim.day_drift_l2=0.01", f"model.day_layers={layers}")
    _tiny_config("optim.day_drift_l2=0", f"model.day_layers={layers}")  # off: any layers
