import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from brain2text.config import ModelConfig, load_run
from brain2text.model.ctc import output_lengths
from brain2text.model.factory import new_model
from brain2text.model.gru import GRUDecoder, count_parameters
from brain2text.model.inputs import GaussianSmoother, gaussian_kernel
from brain2text.phonemes import N_CLASSES
from tests.conftest import RUNS

TINY = ModelConfig(
    n_units=8,
    n_layers=2,
    bidirectional=True,
    kernel_len=8,
    stride_len=3,
    use_layer_norm=True,
    input_dropout=0.1,
)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(8, 120), kernel=st.integers(1, 8), stride=st.integers(1, 5))
def test_output_length_matches_the_forward_pass(t, kernel, stride):
    config = TINY.model_copy(update={"kernel_len": kernel, "stride_len": stride})
    model = GRUDecoder(config, n_days=2).eval()
    out = model(torch.randn(1, t, 256), torch.tensor([1]))
    assert out.shape == (1, output_lengths(t, kernel, stride), N_CLASSES)
    assert output_lengths(torch.tensor([t]), kernel, stride).item() == out.shape[1]


def test_output_length_formula_edges():
    assert output_lengths(32, 32, 4) == 1
    assert output_lengths(35, 32, 4) == 1 and output_lengths(36, 32, 4) == 2
    assert output_lengths(10, 32, 4) == 0
    assert output_lengths(torch.tensor([10, 36]), 32, 4).tolist() == [0, 2]


def test_padding_does_not_change_a_trials_valid_outputs():
    model = GRUDecoder(TINY.model_copy(update={"bidirectional": False}), n_days=1).eval()
    x = torch.randn(1, 60, 256)
    padded = torch.cat([x, torch.zeros(1, 30, 256)], dim=1)
    n = output_lengths(60, 8, 3)
    # unidirectional: the first n outputs only see real bins, and the smoother's look-ahead
    # past the end reads zeros either way ("same" padding or the batch's zero padding)
    a, b = model(x, torch.tensor([0])), model(padded, torch.tensor([0]))
    assert a.shape[1] == n and b.shape[1] > n
    assert torch.allclose(a, b[:, :n], atol=1e-6)


def test_day_layer_starts_as_identity_and_days_differ_once_trained():
    model = GRUDecoder(TINY, n_days=3)
    assert torch.equal(model.day_weights[2], torch.eye(256))
    assert torch.count_nonzero(model.day_biases) == 0
    with torch.no_grad():
        model.day_weights[1].mul_(2)
    model.eval()
    x = torch.randn(1, 40, 256)
    assert not torch.allclose(model(x, torch.tensor([0])), model(x, torch.tensor([1])))


def test_smoother_kernel_and_same_padding():
    k = gaussian_kernel(20, 2.0)
    assert k.sum().item() == pytest.approx(1.0) and k.argmax().item() in (9, 10)
    model = GRUDecoder(TINY, n_days=1)
    impulse = torch.zeros(1, 40, 256)
    impulse[0, 20, 0] = 1.0
    smoothed = model.smoother(impulse)[0, :, 0]
    assert smoothed.shape[0] == 40
    assert smoothed.sum().item() == pytest.approx(1.0, rel=1e-5)
    # torch's "same" padding with an even kernel: 9 zeros left, 10 right -> looks half a bin ahead
    assert smoothed[19].item() == pytest.approx(smoothed[20].item(), rel=1e-5)


def test_full_run13_model_size():
    c = load_run(RUNS / "run13_onecycle_safe.yaml")
    n = count_parameters(GRUDecoder(c.model, n_days=24))
    assert 131e6 < n < 135e6  # ~132M GRU + per-day layers, without the reference's unused layers


def test_init_follows_the_reference():
    # the reference: nn.GRU as torch builds it, then weight_hh orthogonal and weight_ih
    # Xavier-uniform, biases left at torch's default; then the read-out layer
    torch.manual_seed(3)
    model = GRUDecoder(TINY, n_days=2)
    torch.manual_seed(3)
    gru = nn.GRU(
        256 * TINY.kernel_len,
        TINY.n_units,
        num_layers=TINY.n_layers,
        dropout=TINY.dropout,
        bidirectional=TINY.bidirectional,
        batch_first=True,
    )
    for name, param in gru.named_parameters():
        if "weight_hh" in name:
            nn.init.orthogonal_(param)
        if "weight_ih" in name:
            nn.init.xavier_uniform_(param)
    readout = nn.Linear(TINY.n_units * 2, 41)
    for name, param in gru.named_parameters():
        assert torch.equal(getattr(model.gru, name), param), name
    assert torch.equal(model.readout.weight, readout.weight)
    w = model.gru.weight_hh_l0.detach()  # orthogonal_ on (3H, H): orthonormal columns
    assert torch.allclose(w.T @ w, torch.eye(TINY.n_units), atol=1e-5)
    bound = 1 / TINY.n_units**0.5  # torch's default GRU bias init: U(-1/sqrt(H), 1/sqrt(H))
    bias = model.gru.bias_ih_l0.detach()
    assert bias.abs().max() <= bound and bias.abs().max() > bound / 2
    assert torch.equal(model.day_weights[1], torch.eye(256))
    assert torch.count_nonzero(model.day_biases) == 0


def reference_patches(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """The reference decoder's patching: nn.Unfold over a (B, C, T, 1) image.
    (B, T, C) -> (B, T', C*K), channel-major."""
    unfold = nn.Unfold((kernel, 1), dilation=1, padding=0, stride=(stride, 1))
    return unfold(x.permute(0, 2, 1).unsqueeze(3)).permute(0, 2, 1)


@settings(max_examples=30, deadline=None)
@given(
    b=st.integers(1, 3),
    t=st.integers(1, 40),
    c=st.integers(1, 6),
    kernel=st.integers(1, 8),
    stride=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_gru_input_is_the_references_unfold_of_the_softsign(b, t, c, kernel, stride, seed):
    # no smoothing, no LayerNorm, no dropout, identity day layer: the GRU sees patches of
    # softsign(x), which the reference builds with nn.Unfold
    t = max(t, kernel)
    config = ModelConfig(
        n_units=4,
        n_layers=1,
        kernel_len=kernel,
        stride_len=stride,
        gaussian_smooth_width=0.0,
        use_layer_norm=False,
        input_dropout=0.0,
    )
    model = GRUDecoder(config, n_days=2, n_features=c).eval()
    seen: list[torch.Tensor] = []
    model.gru.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    x = torch.randn(b, t, c, generator=torch.Generator().manual_seed(seed)) * 4
    model(x, torch.zeros(b, dtype=torch.long))
    expected = reference_patches(F.softsign(x), kernel, stride)
    assert len(seen) == 1
    assert seen[0].shape == (b, output_lengths(t, kernel, stride), c * kernel)
    assert torch.equal(seen[0], expected)


@settings(max_examples=30, deadline=None)
@given(sigma=st.floats(0.3, 6.0), size=st.sampled_from([20, 7, 1]))
def test_gaussian_kernel_is_scipys_window_normalised(sigma, size):
    window = scipy.signal.windows.gaussian(size, sigma)
    expected = torch.tensor(window / window.sum(), dtype=torch.float32)
    assert torch.allclose(gaussian_kernel(size, sigma), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@settings(max_examples=30, deadline=None)
@given(
    b=st.integers(1, 2),
    t=st.integers(1, 60),
    c=st.integers(1, 5),
    sigma=st.floats(0.3, 6.0),
    seed=st.integers(0, 2**16),
)
def test_smoother_is_the_references_same_padded_depthwise_conv(b, t, c, sigma, seed):
    # the reference: F.conv1d with torch's padding="same", the scipy window as every channel's
    # kernel (groups=C)
    window = scipy.signal.windows.gaussian(20, sigma)
    kernel = torch.tensor(window / window.sum(), dtype=torch.float32).repeat(c, 1, 1)  # (C, 1, 20)
    x = torch.randn(b, t, c, generator=torch.Generator().manual_seed(seed))
    expected = F.conv1d(x.transpose(1, 2), kernel, padding="same", groups=c).transpose(1, 2)
    got = GaussianSmoother(c, sigma, 20)(x)
    assert got.shape == (b, t, c)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_gradients_are_bit_identical_across_repeats_with_two_threads():
    # day_weights[day_idx] has a CPU backward (index_put_ with accumulate) that adds the trials
    # of one day with atomic adds when several threads run: runs at 2 threads diverged
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        model = GRUDecoder(TINY, n_days=3).eval()  # eval: no dropout masks
        x, days = torch.randn(16, 40, 256), torch.randint(0, 3, (16,))
        grads = []
        for _ in range(10):
            model.zero_grad()
            model(x, days).square().sum().backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        assert all(torch.equal(a, b) for g in grads[1:] for a, b in zip(grads[0], g, strict=False))
    finally:
        torch.set_num_threads(threads)


def test_a_learned_initial_state_is_a_parameter_that_trains():
    config = ModelConfig(
        n_units=8, n_layers=2, kernel_len=4, stride_len=2, bidirectional=False, learnable_h0=True
    )
    model = GRUDecoder(config, n_days=2, n_features=12)
    assert model.h0.shape == (2, 1, 8) and model.h0.abs().sum() > 0
    out = model(torch.randn(3, 20, 12), torch.tensor([0, 1, 1]))
    assert out.shape == (3, 9, N_CLASSES)
    out.sum().backward()
    assert model.h0.grad is not None and model.h0.grad.abs().sum() > 0
    zero = GRUDecoder(config.model_copy(update={"learnable_h0": False}), n_days=2, n_features=12)
    assert zero.h0 is None and "h0" not in dict(zero.named_parameters())


def test_causal_smoothing_reads_no_future_bin():
    smoother = GaussianSmoother(3, 2.0, 20, causal=True)
    x = torch.randn(1, 40, 3)
    y = smoother(x)
    changed = x.clone()
    changed[:, 25:] += 5.0  # the future of bin 24
    assert torch.allclose(smoother(changed)[:, :25], y[:, :25])
    assert not torch.allclose(smoother(changed)[:, 25], y[:, 25])
    centred = GaussianSmoother(3, 2.0, 20)
    assert torch.allclose(y[:, 19:], centred(x)[:, 9:-10], atol=1e-6)  # the same taps, later


def test_a_bidirectional_trials_logits_do_not_depend_on_its_batch_when_packed():
    model = GRUDecoder(TINY.model_copy(update={"bidirectional": True}), n_days=2).eval()
    x = torch.randn(1, 60, 256)
    batch = torch.cat([torch.cat([x, torch.zeros(1, 40, 256)], dim=1), torch.randn(1, 100, 256)])
    n = output_lengths(60, TINY.kernel_len, TINY.stride_len)
    alone = model(x, torch.tensor([1]))
    packed = model(batch, torch.tensor([1, 0]), torch.tensor([60, 100]))
    padded = model(batch, torch.tensor([1, 0]))
    assert torch.allclose(packed[0, :n], alone[0], atol=1e-5)
    assert not torch.allclose(padded[0, :n], alone[0], atol=1e-3)  # the padding leaks in
    assert torch.allclose(packed[1], model(batch[1:], torch.tensor([0]))[0], atol=1e-5)


def test_the_factory_builds_a_gru_with_the_checkpoints_weight_names():
    config = load_run(RUNS / "run13_cpu_demo.yaml")
    model = new_model(config, n_days=2, n_features=256)
    assert type(model) is GRUDecoder
    names = {name.split(".")[0] for name in model.state_dict()}
    assert names == {"day_weights", "day_biases", "smoother", "layer_norm", "gru", "readout"}
