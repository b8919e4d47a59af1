import numpy as np
import pytest
import torch

from brain2text.config import ModelConfig
from brain2text.errors import ConfigError, DataError
from brain2text.model.ctc import output_lengths
from brain2text.model.gru import GRUDecoder
from brain2text.model.streaming import Stream, StreamStep, check_streamable
from brain2text.phonemes import N_CLASSES

C = 12
CAUSAL = ModelConfig(
    n_units=16,
    n_layers=2,
    kernel_len=6,
    stride_len=3,
    bidirectional=False,
    causal_smoothing=True,
    gaussian_smooth_width=2.0,
    smooth_kernel_size=20,
    use_layer_norm=True,
    learnable_h0=True,
)
VARIANTS = {
    "base": {},
    "zero_h0": {"learnable_h0": False},
    "no_smoothing": {"gaussian_smooth_width": 0.0},
    "no_smoothing_centred": {"gaussian_smooth_width": 0.0, "causal_smoothing": False},
    "no_layer_norm": {"use_layer_norm": False},
    "kernel_is_stride": {"kernel_len": 4, "stride_len": 4},
    "kernel_below_stride": {"kernel_len": 2, "stride_len": 5},
    "kernel_one": {"kernel_len": 1, "stride_len": 1, "smooth_kernel_size": 5},
    "shared_day_layer": {"day_layers": "shared"},
    "no_day_layer": {"day_layers": "none"},
    "no_day_layer_no_smoothing": {"day_layers": "none", "gaussian_smooth_width": 0.0},
    "log_input": {"log_input": True},
    "diphones": {"targets": "diphone"},
    "mask_token": {"mask_token": True},
    "all_options": {"day_layers": "shared", "log_input": True, "targets": "diphone"},
}


def make_model(seed: int = 0, mask_token: bool = False, **update) -> GRUDecoder:
    torch.manual_seed(seed)
    config = CAUSAL.model_copy(update=update)
    model = GRUDecoder(config, n_days=3, n_features=C, mask_token=mask_token)
    with torch.no_grad():  # days that differ from each other and from the identity
        if model.day_weights is not None and model.day_biases is not None:
            model.day_weights.add_(0.3 * torch.randn_like(model.day_weights))
            model.day_biases.add_(0.3 * torch.randn_like(model.day_biases))
        if model.mask_token is not None:  # learned, never applied at inference
            model.mask_token.normal_()
    return model.eval()


def offline(model: GRUDecoder, x: torch.Tensor, day: int) -> torch.Tensor:
    with torch.no_grad():
        return model(x[None], torch.tensor([day]))[0]


def stream_in_chunks(model: GRUDecoder, x: torch.Tensor, day: int, size: int) -> Stream:
    stream = Stream(model, day)
    pieces = [stream.push(x[i : i + size]) for i in range(0, len(x), size)]
    assert torch.equal(torch.cat(pieces), stream.logits)
    return stream


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", [1, 2, 4, 7, 1000])
def test_streamed_logits_equal_the_offline_pass(variant, size):
    model = make_model(**VARIANTS[variant])
    k, s = model.config.kernel_len, model.config.stride_len
    for t in (k, k + 1, k + 4 * s, 37, 50):
        x = 3 * torch.randn(t, C, generator=torch.Generator().manual_seed(t))
        stream = stream_in_chunks(model, x, 1, size)
        expected = offline(model, x, 1)
        assert stream.n_bins == t
        assert stream.logits.shape == expected.shape == (output_lengths(t, k, s), N_CLASSES)
        torch.testing.assert_close(stream.logits, expected, rtol=0, atol=1e-5)


def test_the_day_layer_is_the_streams_day():
    model = make_model()
    x = torch.randn(40, C)
    streamed = [stream_in_chunks(model, x, day, 4).logits for day in range(3)]
    for day in range(3):
        torch.testing.assert_close(streamed[day], offline(model, x, day), rtol=0, atol=1e-5)
    assert not torch.allclose(streamed[0], streamed[2], atol=1e-3)


@pytest.mark.parametrize("day_layers", ["shared", "none"])
def test_without_per_day_layers_every_day_streams_alike(day_layers):
    model = make_model(day_layers=day_layers)
    x = torch.randn(40, C)
    streamed = [stream_in_chunks(model, x, day, 3).logits for day in range(3)]
    for day in range(3):
        torch.testing.assert_close(streamed[day], offline(model, x, day), rtol=0, atol=1e-5)
        torch.testing.assert_close(streamed[day], streamed[0], rtol=0, atol=0)


def test_diphone_targets_stream_normalised_phoneme_log_probs():
    model = make_model(targets="diphone")
    assert model.readout.out_features == 1641
    logits = stream_in_chunks(model, torch.randn(30, C), 0, 5).logits
    assert logits.shape[1] == N_CLASSES
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(len(logits)))


def test_fewer_bins_than_the_kernel_give_no_frames():
    model = make_model()
    stream = Stream(model, 0)
    assert stream.push(torch.randn(5, C)).shape == (0, N_CLASSES)
    assert stream.logits.shape == (0, N_CLASSES) and stream.n_bins == 5
    assert stream.push(torch.randn(1, C)).shape == (1, N_CLASSES)  # bin 5 ends frame 0


@pytest.mark.parametrize("variant", ["base", "kernel_below_stride"])
def test_a_frame_is_emitted_when_its_last_bin_arrives(variant):
    model = make_model(**VARIANTS[variant])
    k, s = model.config.kernel_len, model.config.stride_len
    stream = Stream(model, 2)
    for t in range(40):  # frame j ends at bin j*S + K - 1
        rows = stream.push(torch.randn(1, C)).shape[0]
        assert rows == int(t >= k - 1 and (t - k + 1) % s == 0), t
    stream, seen = Stream(model, 2), 0
    for size in [4, 1, 7, 3, 2, 4, 4, 9]:
        rows = stream.push(torch.randn(size, C)).shape[0]
        assert rows == output_lengths(seen + size, k, s) - output_lengths(seen, k, s)
        seen += size


def test_a_batch_of_trials_steps_in_lockstep():
    model = make_model()
    step = StreamStep(model, 1)
    x = torch.randn(3, 29, C)
    state = step.initial_state(3)
    pieces = []
    with torch.no_grad():
        for i in range(0, 29, 4):
            logits, *state = step(x[:, i : i + 4], *state)
            pieces.append(logits)
        expected = model(x, torch.tensor([1, 1, 1]))
    torch.testing.assert_close(torch.cat(pieces, 1), expected, rtol=0, atol=1e-5)
    assert state[2].tolist() == [29]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    "variant", ["base", "no_smoothing", "kernel_below_stride", "no_day_layer", "all_options"]
)
def test_the_step_scripts_and_matches_eager(variant):
    model = make_model(**VARIANTS[variant])
    step = StreamStep(model, 2).eval()
    scripted = torch.jit.script(step)
    x = torch.randn(2, 33, C)
    eager_state, script_state = step.initial_state(2), scripted.initial_state(2)
    for a, b in zip(eager_state, script_state, strict=False):
        assert torch.equal(a, b)
    with torch.no_grad():
        for size in [1, 1, 4, 2, 7, 1, 5, 4, 8]:  # some steps emit no frame
            chunk, x = x[:, :size], x[:, size:]
            eager, *eager_state = step(chunk, *eager_state)
            got, *script_state = scripted(chunk, *script_state)
            assert eager.shape == got.shape
            torch.testing.assert_close(got, eager, rtol=0, atol=1e-6)
            for a, b in zip(eager_state, script_state, strict=False):
                torch.testing.assert_close(b, a, rtol=0, atol=1e-6)


def test_streaming_leaves_the_models_mode_alone_and_applies_no_dropout():
    model = make_model(dropout=0.5, input_dropout=0.5).train()
    x = torch.randn(30, C)
    stream = stream_in_chunks(model, x, 0, 4)
    assert all(m.training for m in model.modules())
    assert not stream.logits.requires_grad
    torch.testing.assert_close(stream.logits, offline(model.eval(), x, 0), rtol=0, atol=1e-5)
    stream.push(torch.randn(2, C))
    assert not any(m.training for m in model.modules())


def test_models_that_read_ahead_refuse_to_stream():
    with pytest.raises(ConfigError, match=r"^model\.bidirectional: a bidirectional GRU") as e:
        Stream(make_model(bidirectional=True), 0)
    assert "\n" not in str(e.value)
    with pytest.raises(
        ConfigError, match=r"^model\.causal_smoothing is false: .* 10 bins ahead"
    ) as e:
        check_streamable(make_model(causal_smoothing=False))
    assert "\n" not in str(e.value) and "model.causal_smoothing=true" in str(e.value)
    with pytest.raises(ConfigError, match="centred smoother reads 3 bins ahead"):
        Stream(make_model(causal_smoothing=False, smooth_kernel_size=7), 0)
    check_streamable(make_model(causal_smoothing=False, gaussian_smooth_width=0.0))
    with pytest.raises(ConfigError, match=r"day index 3: the model has days 0\.\.2"):
        Stream(make_model(), 3)


BAD_CHUNKS = {
    "nan": (
        np.array([[0.0] * C, [np.nan] + [0.0] * (C - 2) + [np.inf]] * 2),
        r"^chunk of 4 bins: 4 NaN/Inf values .*still usable$",
    ),
    "overflow": (np.full((2, C), 1e300), r"^chunk of 2 bins: 24 NaN/Inf values"),
    "width": (np.zeros((4, C - 2)), rf"^chunk of shape \(4, {C - 2}\): expected \(bins, {C}\)"),
    "one_dim": (np.zeros(C), rf"^chunk of shape \({C},\): expected \(bins, {C}\)"),
    "three_dim": (torch.zeros(1, 4, C), rf"^chunk of shape \(1, 4, {C}\)"),
    "complex": (np.zeros((4, C), dtype=np.complex64), r"^chunk of dtype complex64: expected real"),
    "bool": (torch.zeros(4, C, dtype=torch.bool), r"^chunk of dtype bool: expected real"),
    "text": (np.array([["a"] * C]), r"^chunk of dtype <U1: expected real"),
    "ragged": ([[1.0, 2.0], [3.0]], r"^chunk is not an array of numbers"),
}


@pytest.mark.parametrize("bad", BAD_CHUNKS)
def test_a_bad_chunk_is_refused_and_the_stream_goes_on(bad):
    chunk, message = BAD_CHUNKS[bad]
    model = make_model()
    x = torch.randn(31, C)
    clean, stream = stream_in_chunks(model, x[:10], 1, 4), stream_in_chunks(model, x[:10], 1, 4)
    with pytest.raises(DataError, match=message) as e:
        stream.push(chunk)
    assert "\n" not in str(e.value)
    assert stream.n_bins == 10
    for i in range(10, 31, 4):  # the same chunks as if the bad one never came: the same floats
        assert torch.equal(stream.push(x[i : i + 4]), clean.push(x[i : i + 4]))
    assert torch.equal(stream.logits, clean.logits)
    torch.testing.assert_close(stream.logits, offline(model, x, 1), rtol=0, atol=1e-5)


def test_real_numbers_of_any_dtype_are_cast_to_float32():
    model = make_model()
    x = torch.randint(0, 4, (20, C))
    expected = offline(model, x.float(), 0)
    for chunk in (
        x,
        x.numpy(),
        x.numpy().astype(np.uint8),
        x.numpy().astype(np.float64),
        x.to(torch.float16),
        x.tolist(),
    ):
        stream = Stream(model, 0)
        stream.push(chunk)
        torch.testing.assert_close(stream.logits, expected, rtol=0, atol=1e-5)
    empty = Stream(model, 0)
    assert empty.push(np.zeros((0, C))).shape == (0, N_CLASSES) and empty.n_bins == 0
