"""The ONNX streaming form: one step per stride_len bins, run with onnxruntime, gives the
offline logits of a causal model; a bidirectional one refuses."""

import numpy as np
import pytest
import torch

from brain2text.config import ModelConfig
from brain2text.errors import ConfigError
from brain2text.model.export import sidecar
from brain2text.model.gru import GRUDecoder

pytest.importorskip("onnxruntime", reason="the export extra is not installed")

from brain2text.model.stream_export import OnnxStream, export_onnx_stream  # noqa: E402


def _model(**changes) -> GRUDecoder:
    torch.manual_seed(0)
    config = ModelConfig(
        n_units=16,
        n_layers=2,
        bidirectional=False,
        causal_smoothing=True,
        use_layer_norm=True,
        **changes,
    )
    model = GRUDecoder(config, n_days=2, n_features=12).eval()
    with torch.no_grad():
        model.day_weights.add_(0.1 * torch.randn_like(model.day_weights))
    return model


@pytest.mark.parametrize(
    "changes",
    [
        {"kernel_len": 14, "stride_len": 4, "learnable_h0": True},
        {"kernel_len": 8, "stride_len": 3},
        {"kernel_len": 4, "stride_len": 4, "gaussian_smooth_width": 0.0},
    ],
)
@pytest.mark.parametrize("n_bins", [53, 60])
def test_the_onnx_step_gives_the_offline_logits(tmp_path, changes, n_bins):
    model = _model(**changes)
    x = torch.randn(1, n_bins, 12)
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
