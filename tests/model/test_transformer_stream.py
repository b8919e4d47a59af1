"""Streaming a causal Transformer chunk by chunk with a key/value cache: the logits equal the
whole trial's, the cache stays within the left context, and models that look ahead refuse."""

import pytest
import torch

from brain2text.config import ModelConfig
from brain2text.errors import ConfigError
from brain2text.model.ctc import output_lengths
from brain2text.model.streaming import Stream, check_streamable
from brain2text.model.transformer import TransformerDecoder
from brain2text.model.transformer_stream import TransformerStreamStep, bias_table, table_bias
from brain2text.phonemes import N_CLASSES

C = 12
BASE = ModelConfig(
    kind="transformer",
    d_model=16,
    n_heads=2,
    n_layers=2,
    ff_mult=2,
    kernel_len=6,
    stride_len=4,
    gaussian_smooth_width=2.0,
    smooth_kernel_size=9,
    causal_smoothing=True,
    use_layer_norm=True,
    relative_buckets=8,
    relative_max_distance=6,
    dropout=0.3,
    input_dropout=0.2,
)
VARIANTS = {  # 0.24 s of context = 3 patches of 4 bins
    "unbounded": {},
    "context_3": {"left_context_s": 0.24},
    "context_1": {"left_context_s": 0.08},
    "sampled_in_training": {"left_context_s": 0.4, "left_context_train_s": (0.1, 1.0)},
    "sinusoidal": {"position": "sinusoidal", "left_context_s": 0.24},
    "kernel_is_stride": {"kernel_len": 4, "stride_len": 4, "left_context_s": 0.4},
    "kernel_below_stride": {"kernel_len": 2, "stride_len": 5, "left_context_s": 0.3},
    "no_smoothing": {"gaussian_smooth_width": 0.0, "causal_smoothing": False},
    "shared_day_layer": {"day_layers": "shared", "left_context_s": 0.24},
    "no_day_layer": {"day_layers": "none", "use_layer_norm": False},
    "log_input_diphones": {"log_input": True, "targets": "diphone", "left_context_s": 0.24},
    "mask_token": {"mask_token": True, "left_context_s": 0.24},
}


def make_model(seed: int = 0, mask_token: bool = False, **update) -> TransformerDecoder:
    torch.manual_seed(seed)
    model = TransformerDecoder(
        BASE.model_copy(update=update), n_days=3, n_features=C, mask_token=mask_token
    )
    with torch.no_grad():  # days that differ; a bias and mask token that are not zeros
        if model.day_weights is not None and model.day_biases is not None:
            model.day_weights.add_(0.3 * torch.randn_like(model.day_weights))
            model.day_biases.add_(0.3 * torch.randn_like(model.day_biases))
        if model.relative_bias is not None:
            model.relative_bias.weight.normal_()
        if model.mask_token is not None:
            model.mask_token.normal_()
    return model.eval()


def offline(model: TransformerDecoder, x: torch.Tensor, day: int) -> torch.Tensor:
    with torch.no_grad():
        return model(x[None], torch.tensor([day]))[0]


def stream_in_chunks(model: TransformerDecoder, x: torch.Tensor, day: int, size: int) -> Stream:
    stream = Stream(model, day)
    pieces = [stream.push(x[i : i + size]) for i in range(0, len(x), size)]
    assert torch.equal(torch.cat(pieces), stream.logits)
    return stream


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", [1, 3, 4, 9, 1000])
def test_streamed_logits_equal_the_whole_trials(variant, size):
    model = make_model(**VARIANTS[variant])
    k, s = model.config.kernel_len, model.config.stride_len
    for t in (k, k + 1, k + 5 * s, 71):
        x = 3 * torch.randn(t, C, generator=torch.Generator().manual_seed(t))
        stream = stream_in_chunks(model, x, 1, size)
        expected = offline(model, x, 1)
        assert stream.logits.shape == expected.shape == (output_lengths(t, k, s), N_CLASSES)
        torch.testing.assert_close(stream.logits, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant, context", [("context_3", 3), ("context_1", 1)])
def test_the_cache_holds_at_most_the_left_contexts_patches(variant, context):
    model = make_model(**VARIANTS[variant])
    step = TransformerStreamStep(model, 0)
    assert step.context == context
    state = step.initial_state(1)
    lengths = []
    with torch.no_grad():
        for _ in range(30):  # 90 bins: 22 patches of 6 bins every 4
            _, *state = step(torch.randn(1, 3, C), *state)
            lengths.append(state[3].shape[3])
    assert max(lengths) == context and lengths[-1] == context
    assert state[3].shape == state[4].shape == (2, 1, 2, context, 8)


def test_an_unbounded_context_grows_the_cache_by_a_patch_every_stride():
    model = make_model()
    step = TransformerStreamStep(model, 0)
    assert step.context == -1
    state = step.initial_state(1)
    with torch.no_grad():
        for seen in range(4, 81, 4):
            _, *state = step(torch.randn(1, 4, C), *state)
            assert state[3].shape[3] == output_lengths(seen, 6, 4)


def test_a_batch_of_trials_steps_in_lockstep():
    model = make_model(left_context_s=0.24)
    step = TransformerStreamStep(model, 2)
    x = torch.randn(3, 45, C)
    state = step.initial_state(3)
    pieces = []
    with torch.no_grad():
        for i in range(0, 45, 5):
            logits, *state = step(x[:, i : i + 5], *state)
            pieces.append(logits)
        expected = model(x, torch.tensor([2, 2, 2]))
    torch.testing.assert_close(torch.cat(pieces, 1), expected, rtol=0, atol=1e-5)
    assert state[2].tolist() == [45]


def test_the_bias_table_gives_the_models_position_bias():
    for bidirectional in (False, True):
        model = make_model(bidirectional=bidirectional, causal_smoothing=False)
        positions = torch.arange(20)
        table = bias_table(model)
        assert table.shape == (2, 13)
        torch.testing.assert_close(
            table_bias(table, positions, positions), model.position_bias(positions, positions)
        )


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("variant", ["unbounded", "context_3", "sinusoidal", "no_day_layer"])
def test_the_step_scripts_and_matches_eager(variant):
    model = make_model(**VARIANTS[variant])
    step = TransformerStreamStep(model, 1).eval()
    scripted = torch.jit.script(step)
    x = torch.randn(2, 50, C)
    eager_state, script_state = step.initial_state(2), scripted.initial_state(2)
    with torch.no_grad():
        for size in [1, 1, 4, 2, 7, 1, 5, 4, 8, 17]:  # some steps emit no frame
            chunk, x = x[:, :size], x[:, size:]
            eager, *eager_state = step(chunk, *eager_state)
            got, *script_state = scripted(chunk, *script_state)
            assert eager.shape == got.shape
            torch.testing.assert_close(got, eager, rtol=0, atol=1e-6)
            for a, b in zip(eager_state, script_state, strict=True):
                torch.testing.assert_close(b, a, rtol=0, atol=1e-6)


def test_streaming_leaves_the_models_mode_alone_and_applies_no_dropout():
    model = make_model(left_context_s=0.24).train()
    x = torch.randn(40, C)
    stream = stream_in_chunks(model, x, 0, 3)
    assert all(m.training for m in model.modules())
    torch.testing.assert_close(stream.logits, offline(model.eval(), x, 0), rtol=0, atol=1e-5)


def test_models_that_look_ahead_refuse_to_stream():
    with pytest.raises(
        ConfigError, match=r"^model\.bidirectional: a bidirectional Transformer attends"
    ) as e:
        Stream(make_model(bidirectional=True), 0)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"^model\.causal_smoothing is false: .* 4 bins ahead"):
        check_streamable(make_model(causal_smoothing=False))
    with pytest.raises(ConfigError, match=r"day index 3: the model has days 0\.\.2"):
        Stream(make_model(), 3)
