"""The ONNX streaming form: one step per stride_len bins, run with onnxruntime, gives the
offline logits of a causal GRU or Transformer; a bidirectional one refuses, and so does a
Transformer without a bounded left context."""

import json

import numpy as np
import pytest
import torch

from brain2text.config import ModelConfig
from brain2text.errors import ConfigError
from brain2text.model.export import sidecar
from brain2text.model.gru import GRUDecoder
from brain2text.model.transformer import TransformerDecoder

pytest.importorskip("onnxruntime", reason="the export extra is not installed")

from brain2text.model.stream_export import (  # noqa: E402
    OnnxStream,
    check_stream_export,
    export_onnx_stream,
)


def _model(mask_token: bool = False, **changes) -> GRUDecoder:
    torch.manual_seed(0)
    config = ModelConfig(
        n_units=16,
        n_layers=2,
        bidirectional=False,
        causal_smoothing=True,
        use_layer_norm=True,
        **changes,
    )
    model = GRUDecoder(config, n_days=2, n_features=12, mask_token=mask_token).eval()
    with torch.no_grad():
        if model.day_weights is not None:
            model.day_weights.add_(0.1 * torch.randn_like(model.day_weights))
        if model.mask_token is not None:
            model.mask_token.normal_()
    return model


@pytest.mark.parametrize(
    "changes",
    [
        {"kernel_len": 14, "stride_len": 4, "learnable_h0": True},
        {"kernel_len": 8, "stride_len": 3},
        {"kernel_len": 4, "stride_len": 4, "gaussian_smooth_width": 0.0},
        {"kernel_len": 6, "stride_len": 4, "day_layers": "none", "log_input": True},
        {"kernel_len": 5, "stride_len": 2, "day_layers": "shared", "targets": "diphone"},
        {"kernel_len": 8, "stride_len": 4, "mask_token": True},
    ],
)
@pytest.mark.parametrize("n_bins", [53, 60])
def test_the_onnx_step_gives_the_offline_logits(tmp_path, changes, n_bins):
    model = _model(**changes)
    x = 3 * torch.randn(1, n_bins, 12)
    want = model(x, torch.tensor([1]))[0].detach().numpy()
    out = tmp_path / "step.onnx"
    info = sidecar({"model": model.config.model_dump()}, ["a", "b"], ["b"], 12)
    export_onnx_stream(model, ["a", "b"], "b", out, info)
    h0 = out.with_name(out.name + ".h0.npy")
    stream = OnnxStream(out, np.load(h0) if h0.exists() else None)
    got = [stream.push(x[0, i : i + 5].numpy()) for i in range(0, n_bins, 5)]
    got.append(stream.push(np.zeros(((-n_bins) % model.config.stride_len, 12), np.float32)))
    got = np.concatenate(got)
    assert len(got) >= len(want)
    np.testing.assert_allclose(got[: len(want)], want, atol=1e-5)


def test_a_bidirectional_model_has_no_streaming_form(tmp_path):
    model = _model(kernel_len=8, stride_len=4).train(False)
    bi = GRUDecoder(model.config.model_copy(update={"bidirectional": True}), 2, 12)
    with pytest.raises(ConfigError, match="bidirectional"):
        export_onnx_stream(bi, ["a", "b"], "a", tmp_path / "x.onnx", {})
    assert not (tmp_path / "x.onnx").exists()


def _transformer(**changes) -> TransformerDecoder:
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
            **changes,
        }
    )
    model = TransformerDecoder(config, n_days=2, n_features=12).eval()
    with torch.no_grad():
        if model.day_weights is not None:
            model.day_weights.add_(0.1 * torch.randn_like(model.day_weights))
        if model.relative_bias is not None:
            model.relative_bias.weight.normal_()
    return model


@pytest.mark.parametrize(
    "changes",
    [
        {"left_context_s": 0.24},  # 3 patches: the cache rolls over many times
        {"left_context_s": 4.0},  # 50 patches: longer than the trial
        {"left_context_s": 0.16, "position": "sinusoidal", "kernel_len": 3, "stride_len": 5},
        {"left_context_s": 0.4, "day_layers": "none", "targets": "diphone", "log_input": True},
    ],
)
def test_the_transformers_onnx_step_gives_the_offline_logits(tmp_path, changes):
    model = _transformer(**changes)
    x = 3 * torch.randn(1, 83, 12)
    want = model(x, torch.tensor([1]))[0].detach().numpy()
    out = tmp_path / "step.onnx"
    info = sidecar({"model": model.config.model_dump()}, ["a", "b"], ["b"], 12)
    export_onnx_stream(model, ["a", "b"], "b", out, info)
    meta = json.loads(out.with_name("step.onnx.json").read_text())["streaming"]
    context = meta["context_patches"]
    assert meta["state_shapes"]["keys"] == [2, 1, 2, context, 8]
    stream = OnnxStream(out)
    got = [stream.push(x[0, i : i + 7].numpy()) for i in range(0, 83, 7)]
    got.append(stream.push(np.zeros(((-83) % model.config.stride_len, 12), np.float32)))
    got = np.concatenate(got)
    assert len(got) >= len(want)
    np.testing.assert_allclose(got[: len(want)], want, atol=1e-5)


def test_an_unbounded_context_has_no_onnx_step(tmp_path):
    with pytest.raises(ConfigError, match=r"^model\.left_context_s is unset: .* fixed-size"):
        check_stream_export(_transformer(), "a")
    with pytest.raises(ConfigError, match=r"^model\.left_context_s is unset"):
        export_onnx_stream(_transformer(), ["a", "b"], "a", tmp_path / "x.onnx", {})
    with pytest.raises(ConfigError, match=r"^model\.bidirectional: a bidirectional Transformer"):
        check_stream_export(_transformer(bidirectional=True, causal_smoothing=False), "a")
    assert list(tmp_path.iterdir()) == []
