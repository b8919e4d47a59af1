"""The encoders' shared input layers: the log transform, the day layers (per day, shared, none),
the learned mask token, and the weight names older checkpoints know."""

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.config import validate
from brain2text.model.factory import new_model
from brain2text.model.gru import GRUDecoder
from brain2text.model.inputs import log_input
from brain2text.sections import ModelConfig

RELEASE1 = Path(__file__).resolve().parents[1] / "fixtures" / "release1"
N_FEATURES = 12


def _model(**keys) -> GRUDecoder:
    values = {
        "n_units": 8,
        "n_layers": 1,
        "kernel_len": 4,
        "stride_len": 2,
        "dropout": 0.0,
        "gaussian_smooth_width": 2.0,
        "use_layer_norm": True,
        **keys,
    }
    torch.manual_seed(0)
    return GRUDecoder(ModelConfig(**values), n_days=3, n_features=N_FEATURES).eval()


def _randomise_day_layers(model: GRUDecoder) -> None:
    """Days that differ (at init every day is the identity)."""
    assert model.day_weights is not None and model.day_biases is not None
    with torch.no_grad():
        model.day_weights.add_(0.3 * torch.randn_like(model.day_weights))
        model.day_biases.add_(0.3 * torch.randn_like(model.day_biases))


def _x(batch: int = 3, bins: int = 30) -> torch.Tensor:
    return torch.randn(batch, bins, N_FEATURES, generator=torch.Generator().manual_seed(1))


# ----------------------------------------------------------------------------- log_input


# Subnormal inputs are left out: log1p flushes them to zero on CPU (the features are float32).
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=20))
def test_log_input_is_odd_and_keeps_the_sign(values):
    x = torch.tensor(values, dtype=torch.float64)
    y = log_input(x)
    torch.testing.assert_close(log_input(-x), -y, rtol=0, atol=0)
    assert torch.equal(torch.sign(y), torch.sign(x))
    assert (y.abs() <= x.abs()).all()  # log(1 + a) <= a: it only compresses


@settings(max_examples=100, deadline=None)
@given(a=finite, b=finite)
def test_log_input_is_monotone(a, b):
    lo, hi = sorted((a, b))
    ya, yb = log_input(torch.tensor([lo, hi], dtype=torch.float64)).tolist()
    assert ya <= yb


def test_log_input_is_strictly_increasing_on_a_grid():
    y = log_input(torch.linspace(-100, 100, 20001, dtype=torch.float64))
    assert (y[1:] > y[:-1]).all()  # no two inputs share an output


def test_log_input_at_and_around_zero():
    x = torch.tensor([0.0, -0.0, 1e-8, -1e-8, 1.0, -1.0, torch.e - 1])
    y = log_input(x)
    assert y[0] == 0 and y[1] == 0
    torch.testing.assert_close(y[2:4], x[2:4])  # slope 1 at 0: small values pass through
    torch.testing.assert_close(y[4:], torch.tensor([0.6931472, -0.6931472, 1.0]))
    g = torch.zeros(1, requires_grad=True)
    log_input(g).sum().backward()
    assert g.grad is not None and g.grad.item() == 0.0  # sign(0) = 0: no NaN at zero


def test_the_model_reads_log_transformed_features():
    plain, logged = _model(), _model(log_input=True)
    logged.load_state_dict(plain.state_dict())
    x, days = _x() * 5, torch.tensor([0, 1, 2])
    torch.testing.assert_close(logged.inputs(x, days), plain.inputs(log_input(x), days))
    assert not torch.allclose(logged.inputs(x, days), plain.inputs(x, days))


# ---------------------------------------------------------------------------- day layers


def test_a_shared_day_layer_gives_every_day_the_same_output():
    model = _model(day_layers="shared")
    assert model.day_weights is not None and model.day_weights.shape == (1, 12, 12)
    assert model.day_biases is not None and model.day_biases.shape == (1, 1, 12)
    _randomise_day_layers(model)
    x = _x(1).repeat(3, 1, 1)
    out = model(x, torch.tensor([0, 1, 2]))
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=0)
    torch.testing.assert_close(out[2], out[0], rtol=0, atol=0)
    # and it is a real layer: the one W, b, softsign
    w, b = model.day_weights[0], model.day_biases[0]
    days = torch.tensor([2])
    torch.testing.assert_close(
        model.day_layer(x[:1], days), torch.nn.functional.softsign(x[:1] @ w + b)
    )


def test_no_day_layer_has_no_weights_and_ignores_the_day():
    model = _model(day_layers="none")
    assert model.day_weights is None and model.day_biases is None
    assert not any(k.startswith("day_") for k in model.state_dict())
    assert not any(n.startswith("day_") for n, _ in model.named_parameters())
    x = _x(1).repeat(3, 1, 1)
    out = model(x, torch.tensor([0, 2, 7]))  # any index, even one past the training days
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=0)
    torch.testing.assert_close(out[2], out[0], rtol=0, atol=0)
    assert model.day_layer(x, torch.tensor([0, 1, 2])) is x  # skipped, softsign too


def test_per_day_layers_differ_between_days():
    model = _model()
    assert model.day_weights is not None and model.day_weights.shape == (3, 12, 12)
    _randomise_day_layers(model)
    x = _x(1).repeat(2, 1, 1)
    out = model(x, torch.tensor([0, 1]))
    assert isinstance(out, torch.Tensor) and not torch.allclose(out[0], out[1])


# -------------------------------------------------------------- the learned mask token


def test_the_mask_token_fills_the_marked_bins_after_the_input_layers():
    config = ModelConfig(n_units=8, n_layers=1, kernel_len=4, dropout=0.0, use_layer_norm=True)
    torch.manual_seed(0)
    model = GRUDecoder(config, n_days=3, n_features=N_FEATURES, mask_token=True).eval()
    assert model.mask_token is not None
    with torch.no_grad():
        model.mask_token.copy_(torch.arange(N_FEATURES, dtype=torch.float32))
    x, days = _x(2, 20), torch.tensor([0, 1])
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[0, 3:7] = mask[1, 10] = True
    out, plain = model.inputs(x, days, mask), model.inputs(x, days)
    assert torch.equal(out[mask], model.mask_token.detach().expand(5, -1))
    assert torch.equal(out[~mask], plain[~mask])
    without = _model(gaussian_smooth_width=0.0)  # no token: a mask changes nothing
    assert torch.equal(without.inputs(x, days, mask), without.inputs(x, days))


# ------------------------------------------------------------- checkpoint compatibility


def test_a_per_day_gru_has_exactly_the_weight_names_of_older_checkpoints():
    model = _model(bidirectional=True, learnable_h0=True)
    gru = [
        f"gru.{kind}_{part}_l0{suffix}"
        for suffix in ("", "_reverse")
        for kind in ("weight", "bias")
        for part in ("ih", "hh")
    ]
    assert set(model.state_dict()) == {
        "day_weights",
        "day_biases",
        "smoother.kernel",
        "layer_norm.weight",
        "layer_norm.bias",
        "h0",
        *gru,
        "readout.weight",
        "readout.bias",
    }


def test_a_first_release_checkpoint_fills_a_per_day_model_exactly():
    checkpoint = torch.load(RELEASE1 / "best.pt", map_location="cpu", weights_only=False)
    state = checkpoint["model"]
    config = validate(checkpoint["config"])
    assert config.model.day_layers == "per_day" and config.augment.time_masks is None
    model = new_model(config, n_days=1, n_features=state["day_weights"].shape[-1])
    assert list(model.state_dict()) == list(state)  # the same names, in the same order
    model.load_state_dict(state, strict=True)
    assert model.mask_token is None


@pytest.mark.parametrize("fill", ["zero", "learned"])
def test_only_learned_masks_add_a_weight(fill):
    checkpoint = torch.load(RELEASE1 / "best.pt", map_location="cpu", weights_only=False)
    data = checkpoint["config"]
    data["augment"]["time_masks"] = {"count": 20, "max_fraction": 0.05, "fill": fill}
    model = new_model(validate(data), n_days=1, n_features=128)
    extra = set(model.state_dict()) - set(checkpoint["model"])
    assert extra == ({"mask_token"} if fill == "learned" else set())
