import json

import numpy as np
import pytest
import torch

from brain2text.config import ModelConfig
from brain2text.errors import ConfigError
from brain2text.model.export import (
    ExportedDecoder,
    export_onnx,
    export_safetensors,
    export_torchscript,
    resolve_days,
    sidecar,
)
from brain2text.model.gru import GRUDecoder
from brain2text.model.transformer import TransformerDecoder
from brain2text.phonemes import N_CLASSES, PHONEMES

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")

N_FEATURES = 12
DAYS = ["d0", "d1", "d2", "d3"]
VARIANTS = [  # (bidirectional, learnable_h0, use_layer_norm, causal_smoothing)
    (True, True, True, False),
    (True, False, False, False),
    (False, True, False, True),
    (False, False, True, False),
]


def make_model(
    bidirectional=True,
    learnable_h0=False,
    use_layer_norm=False,
    causal_smoothing=False,
    seed=0,
    mask_token=False,
    **options,
) -> GRUDecoder:
    torch.manual_seed(seed)
    config = ModelConfig(
        n_units=16,
        n_layers=2,
        kernel_len=6,
        stride_len=3,
        bidirectional=bidirectional,
        learnable_h0=learnable_h0,
        use_layer_norm=use_layer_norm,
        causal_smoothing=causal_smoothing,
        **options,
    )
    model = GRUDecoder(config, n_days=len(DAYS), n_features=N_FEATURES, mask_token=mask_token)
    with torch.no_grad():  # days that differ from each other
        if model.day_weights is not None and model.day_biases is not None:
            model.day_weights.add_(0.3 * torch.randn_like(model.day_weights))
            model.day_biases.add_(0.3 * torch.randn_like(model.day_biases))
        if model.mask_token is not None:
            model.mask_token.normal_()
    return model.eval()


def batch(b: int, t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, N_FEATURES, generator=g)
    day = torch.tensor([3, 0, 2][:b] if b > 1 else [1], dtype=torch.long)
    return x, day


@pytest.fixture(params=VARIANTS, ids=lambda v: "bi{}-h0{}-ln{}-causal{}".format(*map(int, v)))
def model(request) -> GRUDecoder:
    return make_model(*request.param)


def test_wrapper_matches_the_model_and_maps_chosen_days():
    model = make_model(learnable_h0=True)
    x, _ = batch(3, 25, seed=1)
    chosen = [DAYS.index("d2"), DAYS.index("d0")]
    wrapper = ExportedDecoder(model, chosen)
    with torch.no_grad():
        for new, old in enumerate(chosen):
            d_new = torch.full((3,), new, dtype=torch.long)
            d_old = torch.full((3,), old, dtype=torch.long)
            torch.testing.assert_close(wrapper(x, d_new), model(x, d_old), atol=1e-6, rtol=0)
    assert wrapper.day_weights.shape[0] == 2
    assert wrapper.day_weights.data_ptr() != model.day_weights.data_ptr()


@pytest.mark.parametrize("shape", [(1, 20), (3, 47)])
def test_onnx_matches_torch(model, tmp_path, shape):
    ort = pytest.importorskip("onnxruntime")
    path = export_onnx(model, DAYS, None, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in (shape, (shape[0], shape[1] + 13)):
        x, day = batch(b, t, seed=b * t)
        (got,) = session.run(["logits"], {"features": x.numpy(), "day": day.numpy()})
        with torch.no_grad():
            want = model(x, day).numpy()
        assert got.shape == want.shape == (b, (t - 6) // 3 + 1, N_CLASSES)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_torchscript_round_trips(model, tmp_path):
    path = export_torchscript(model, DAYS, None, tmp_path / "m.pt")
    loaded = torch.jit.load(str(path))
    for b, t in ((1, 18), (3, 41)):
        x, day = batch(b, t, seed=t)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x, day), model(x, day), atol=1e-5, rtol=0)


OPTIONS = {
    "shared": {"day_layers": "shared"},
    "none": {"day_layers": "none", "use_layer_norm": True},
    "log_input": {"log_input": True},
    "diphones": {"targets": "diphone", "bidirectional": False},
    "mask_token": {"mask_token": True},
    "all": {"day_layers": "none", "log_input": True, "targets": "diphone"},
}


@pytest.mark.parametrize("option", OPTIONS)
def test_every_input_option_and_target_exports_to_onnx_and_torchscript(option, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = make_model(**OPTIONS[option])
    x, day = batch(3, 40, seed=5)
    x = 3 * x  # beyond the log transform's near-linear range
    with torch.no_grad():
        want = model(x, day).numpy()
    assert want.shape == (3, 12, N_CLASSES)
    onnx_path = export_onnx(model, DAYS, ["d3", "d0", "d2"], tmp_path / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    info = json.loads((tmp_path / "m.onnx.json").read_text())
    per_day = model.config.day_layers == "per_day"
    assert [i.name for i in session.get_inputs()] == ["features", "day"][: 1 + per_day]
    assert list(info["input_shapes"]) == ["features", "day"][: 1 + per_day]
    assert info["day_layers"] == model.config.day_layers
    assert ("log-probabilities" in info["output"]) == (model.config.targets == "diphone")
    feeds = {"features": x.numpy(), "day": np.arange(3)}
    (got,) = session.run(["logits"], {k: feeds[k] for k in info["input_shapes"]})
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    ts = torch.jit.load(str(export_torchscript(model, DAYS, ["d3", "d0", "d2"], tmp_path / "m.pt")))
    with torch.no_grad():
        np.testing.assert_allclose(ts(x, torch.arange(3)).numpy(), want, atol=1e-4, rtol=0)
    if model.config.targets == "diphone":
        np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, atol=1e-5)


def test_chosen_days_map_in_order(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = make_model(bidirectional=False, learnable_h0=True)
    chosen = ["d2", "d0"]
    x, _ = batch(2, 30, seed=3)
    new = torch.tensor([0, 1])
    with torch.no_grad():
        want = model(x, torch.tensor([2, 0])).numpy()
    onnx_path = export_onnx(model, DAYS, chosen, tmp_path / "sub" / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"features": x.numpy(), "day": new.numpy()})
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    ts = torch.jit.load(str(export_torchscript(model, DAYS, chosen, tmp_path / "m.pt")))
    with torch.no_grad():
        np.testing.assert_allclose(ts(x, new).numpy(), want, atol=1e-5, rtol=0)
    info = json.loads((tmp_path / "sub" / "m.onnx.json").read_text())
    assert info["days"] == ["d2", "d0"] and info["export_format"] == "onnx"
    assert info["opset"] == 17 and info["causal"] is False


def test_safetensors_round_trips_exactly(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    model = make_model(learnable_h0=True)
    path = export_safetensors(
        model, tmp_path / "w.safetensors", {"days": json.dumps(DAYS), "note": "x"}
    )
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["note"] == "x" and json.loads(meta["days"]) == DAYS
    assert meta["format"] == "brain2text-gru-state-dict" and meta["mask_token"] == "false"
    fresh = GRUDecoder(
        ModelConfig(**json.loads(meta["model_config"])),
        n_days=int(meta["n_days"]),
        n_features=int(meta["n_features"]),
        mask_token=json.loads(meta["mask_token"]),
    )
    fresh.load_state_dict(load_file(str(path)))
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    info = json.loads((tmp_path / "w.safetensors.json").read_text())
    assert info["days"] == DAYS and info["export_format"] == "safetensors"
    with pytest.raises(ConfigError):
        export_safetensors(model, tmp_path / "bad.safetensors", {"n": 3})


def test_sidecar_contents():
    run = {"model": {"n_units": 16, "kernel_len": 6, "stride_len": 3, "causal_smoothing": True}}
    names = [f"f{i}" for i in range(N_FEATURES)]
    info = sidecar(run, DAYS, ["d3", "d1"], N_FEATURES, names, "zscore-per-block")
    assert info["classes"][0] == "<blank>" and info["classes"][1:] == list(PHONEMES)
    assert len(info["classes"]) == N_CLASSES == 41 and info["classes"][-1] == "SIL"
    assert info["days"] == ["d3", "d1"] and info["n_features"] == N_FEATURES
    assert info["feature_names"] == names and info["normalization"] == "zscore-per-block"
    assert info["kernel_len"] == 6 and info["stride_len"] == 3 and info["causal"] is True
    assert info["model_config"]["n_units"] == 16 and info["run_config"] == run
    assert sidecar({"bidirectional": True}, DAYS, None, 4)["causal"] is False
    json.dumps(info)


@pytest.mark.parametrize(
    "chosen, words", [(["d9"], ["'d9'", "d0"]), ([], ["empty"]), (["d1", "d1"], ["'d1'"])]
)
def test_bad_days_are_one_line_config_errors(chosen, words, tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_days(DAYS, chosen)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words)
    with pytest.raises(ConfigError):
        export_torchscript(make_model(), DAYS, chosen, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(module, f, *args, **kwargs):
        f.write(b"half a model")
        raise RuntimeError("disk gone")

    monkeypatch.setattr(torch.jit, "save", broken_save)
    out = tmp_path / "new" / "m.pt"
    with pytest.raises(RuntimeError, match="disk gone"):
        export_torchscript(make_model(), DAYS, None, out)
    assert not out.exists() and list(out.parent.iterdir()) == []


TRANSFORMER_OPTIONS = {
    "causal": {},
    "context": {"left_context_s": 0.24},
    "bidirectional": {"bidirectional": True, "causal_smoothing": False},
    "sinusoidal": {"position": "sinusoidal", "left_context_s": 0.16},
    "no_day_layer_diphones": {"day_layers": "none", "targets": "diphone", "log_input": True},
}


def make_transformer(**options) -> TransformerDecoder:
    torch.manual_seed(0)
    config = ModelConfig(
        **{
            "kind": "transformer",
            "d_model": 16,
            "n_heads": 2,
            "n_layers": 2,
            "kernel_len": 6,
            "stride_len": 4,
            "causal_smoothing": True,
            "use_layer_norm": True,
            "relative_buckets": 8,
            "relative_max_distance": 5,
            **options,
        }
    )
    model = TransformerDecoder(config, n_days=len(DAYS), n_features=N_FEATURES)
    with torch.no_grad():
        if model.day_weights is not None and model.day_biases is not None:
            model.day_weights.add_(0.3 * torch.randn_like(model.day_weights))
            model.day_biases.add_(0.3 * torch.randn_like(model.day_biases))
        if model.relative_bias is not None:
            model.relative_bias.weight.normal_()
    return model.eval()


@pytest.mark.parametrize("option", TRANSFORMER_OPTIONS)
def test_a_transformer_exports_to_onnx_and_torchscript(option, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = make_transformer(**TRANSFORMER_OPTIONS[option])
    chosen = ["d3", "d0", "d2"]
    onnx_path = export_onnx(model, DAYS, chosen, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    info = json.loads((tmp_path / "m.onnx.json").read_text())
    assert info["model_config"]["kind"] == "transformer" and info["days"] == chosen
    assert info["causal"] is not model.config.bidirectional
    ts = torch.jit.load(str(export_torchscript(model, DAYS, chosen, tmp_path / "m.pt")))
    for b, t in ((3, 70), (2, 33), (2, 6)):  # T is free in the graph: 15, 7 and 1 patches
        x, day = batch(b, t, seed=t)
        with torch.no_grad():
            want = model(3 * x, day).numpy()
        new = torch.tensor([chosen.index(DAYS[d]) for d in day.tolist()])
        feeds = {"features": 3 * x.numpy(), "day": new.numpy()}
        (got,) = session.run(["logits"], {k: feeds[k] for k in info["input_shapes"]})
        assert got.shape == want.shape == (b, (t - 6) // 4 + 1, N_CLASSES)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
        with torch.no_grad():
            np.testing.assert_allclose(ts(3 * x, new).numpy(), want, atol=1e-4, rtol=0)


def test_a_transformers_safetensors_rebuild_it(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    model = make_transformer(left_context_s=0.24)
    path = export_safetensors(model, tmp_path / "w.safetensors", {"days": json.dumps(DAYS)})
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "brain2text-transformer-state-dict"
    fresh = TransformerDecoder(
        ModelConfig(**json.loads(meta["model_config"])),
        n_days=int(meta["n_days"]),
        n_features=int(meta["n_features"]),
        mask_token=json.loads(meta["mask_token"]),
    )
    fresh.load_state_dict(load_file(str(path)))
    x, day = batch(2, 30, seed=1)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x, day), model(x, day))
