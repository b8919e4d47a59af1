"""The Transformer encoder: T5 bucket arithmetic and attention masks at their edges, a trial's
logits alone and in a padded batch, causality, the training-time context draw, the option
checks, the paper's parameter count, and one training step of every Transformer run file."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from brain2text.config import ModelConfig, load_run
from brain2text.data.batches import Batch
from brain2text.data.manifest import BIN_SECONDS
from brain2text.distributed import Dist
from brain2text.model.ctc import output_lengths
from brain2text.model.diphones import N_DIPHONE_CLASSES
from brain2text.model.factory import new_model
from brain2text.model.gru import count_parameters
from brain2text.model.loading import feature_count
from brain2text.model.transformer import (
    TransformerDecoder,
    allowed_keys,
    attention_mask,
    context_patches,
    relative_bucket,
    sinusoidal_positions,
)
from brain2text.phonemes import N_CLASSES
from brain2text.sections import BIN_SECONDS as CORE_BIN_SECONDS
from brain2text.training.optim import build_optimizer
from brain2text.training.step import Learner, StepOptions, build_scaler, train_step
from tests.conftest import RUNS

TINY = ModelConfig(
    kind="transformer",
    d_model=16,
    n_heads=2,
    n_layers=2,
    ff_mult=2,
    kernel_len=4,
    stride_len=3,
    day_layers="none",
    dropout=0.1,
    relative_buckets=8,
    relative_max_distance=12,
)
C = 8  # features a bin


def tiny(**update) -> TransformerDecoder:
    return TransformerDecoder(TINY.model_copy(update=update), n_days=3, n_features=C)


# --- bucket arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("n_buckets, max_distance", [(32, 128), (8, 12), (2, 1), (3, 100)])
def test_bucket_edges(bidirectional, n_buckets, max_distance):
    def bucket(d: int) -> int:
        return int(relative_bucket(torch.tensor([d]), n_buckets, max_distance, bidirectional))

    side = n_buckets // 2 if bidirectional else n_buckets
    assert bucket(0) == 0
    assert bucket(-max_distance) == side - 1 and bucket(-10 * max_distance) == side - 1
    if bidirectional:  # keys after the query: the upper half, up to the last bucket
        assert bucket(max_distance) == 2 * side - 1 == bucket(10 * max_distance)
        assert bucket(1) == side + min(1, side - 1)
    else:  # keys after the query all share bucket 0 (attention never reaches them)
        assert bucket(1) == bucket(max_distance) == 0
    exact = max(side // 2, 1)
    for d in range(exact):  # short distances have a bucket each
        assert bucket(-d) == d


@settings(max_examples=40, deadline=None)
@given(
    n_buckets=st.integers(2, 64),
    max_distance=st.integers(1, 300),
    bidirectional=st.booleans(),
)
def test_buckets_are_monotone_in_distance_and_in_range(n_buckets, max_distance, bidirectional):
    distances = torch.arange(0, 3 * max_distance + 5)
    before = relative_bucket(-distances, n_buckets, max_distance, bidirectional)
    after = relative_bucket(distances, n_buckets, max_distance, bidirectional)
    for buckets in (before, after):
        assert (buckets.diff() >= 0).all() and buckets.min() >= 0
        assert buckets.max() < n_buckets
    if bidirectional:  # the two sides never share a bucket (0 is on the "before" side)
        assert set(before.tolist()).isdisjoint(after[1:].tolist())


def test_the_t5_buckets_at_32_and_128():
    rel = torch.tensor([-128, -64, -16, -8, -7, 0, 7, 8, 16, 64, 128])
    # T5's encoder (bidirectional): 16 buckets a side, 8 exact, then 8 + log(d / 8) / log(16) * 8
    assert relative_bucket(rel, 32, 128, True).tolist() == [
        15, 14, 10, 8, 7, 0, 23, 24, 26, 30, 31,
    ]  # fmt: skip
    # causal: 32 buckets for the past, 16 exact, then 16 + log(d / 16) / log(8) * 16
    assert relative_bucket(rel, 32, 128, False).tolist() == [31, 26, 16, 8, 7, 0, 0, 0, 0, 0, 0]


# --- masks -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), context=st.one_of(st.none(), st.integers(0, 45)))
def test_a_causal_row_has_min_i_c_plus_one_keys(n, context):
    positions = torch.arange(n)
    allowed = allowed_keys(positions, positions, causal=True, context=context)
    c = n if context is None else context
    assert allowed.sum(1).tolist() == [min(i, c) + 1 for i in range(n)]
    rows, cols = allowed.nonzero().T
    assert (cols <= rows).all() and (rows - cols <= c).all()  # itself and its past
    assert allowed_keys(positions, positions, causal=False, context=None).all()


def test_a_chunk_of_queries_against_cached_keys_is_the_whole_trials_rows():
    positions = torch.arange(20)
    whole = allowed_keys(positions, positions, causal=True, context=5)
    chunk = allowed_keys(torch.arange(12, 15), torch.arange(7, 15), causal=True, context=5)
    assert torch.equal(chunk, whole[12:15, 7:15])


def test_padding_keys_are_masked_and_no_row_is_all_blocked():
    positions = torch.arange(6)
    bias = torch.randn(2, 6, 6)
    for causal in (True, False):
        allowed = allowed_keys(positions, positions, causal, None)
        mask = attention_mask(allowed, bias, positions, positions, torch.tensor([6, 3]))
        assert mask.shape == (2, 2, 6, 6)
        assert torch.isfinite(mask).any(-1).all()  # every query attends to something
        assert torch.isinf(mask[1, :, :3, 3:]).all()  # real patches never see padding
        expected = torch.where(allowed, bias, -math.inf)
        assert torch.equal(mask[0], expected)  # a full-length trial: the bias where allowed


def test_context_in_patches():
    assert context_patches(20.0, 4) == 250 and context_patches(7.5, 5) == 75
    assert context_patches(0.08, 4) == 1 and context_patches(0.079, 4) == 0
    assert context_patches(None, 4) is None
    assert CORE_BIN_SECONDS == BIN_SECONDS  # the core's copy of the bin width


def test_sinusoidal_positions():
    enc = sinusoidal_positions(torch.arange(5), 7)
    assert enc.shape == (5, 7)
    assert torch.equal(enc[0, 0::2], torch.zeros(4)) and torch.equal(enc[0, 1::2], torch.ones(3))
    assert torch.allclose(enc[3, 0], torch.tensor(math.sin(3.0)))
    assert torch.equal(sinusoidal_positions(torch.arange(2, 5), 7), enc[2:])


# --- the model ---------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(t=st.integers(4, 70), kernel=st.integers(1, 6), stride=st.integers(1, 5))
def test_output_length_matches_the_formula(t, kernel, stride):
    t = max(t, kernel)
    model = tiny(kernel_len=kernel, stride_len=stride).eval()
    out = model(torch.randn(1, t, C), torch.tensor([0]))
    assert out.shape == (1, output_lengths(t, kernel, stride), N_CLASSES)


@pytest.mark.parametrize(
    "update",
    [
        {"bidirectional": True},
        {"bidirectional": True, "position": "sinusoidal"},
        {"left_context_s": 0.2},
        {"position": "sinusoidal", "day_layers": "per_day"},
    ],
)
def test_a_trials_logits_are_the_same_alone_and_in_a_padded_batch(update):
    torch.manual_seed(0)
    model = tiny(**update).eval()
    n_bins = torch.tensor([70, 41, 55])
    x = torch.randn(3, 70, C)
    x[torch.arange(70)[None, :] >= n_bins[:, None]] = 0  # a batch is zero-padded
    days = torch.tensor([0, 2, 1])
    batch = model(x, days, n_bins)
    for i, n in enumerate(n_bins.tolist()):
        alone = model(x[i : i + 1, :n], days[i : i + 1], n_bins[i : i + 1])
        frames = output_lengths(n, 4, 3)
        assert alone.shape[1] == frames
        torch.testing.assert_close(batch[i : i + 1, :frames], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("context", [None, 0.3])
def test_a_causal_models_first_patches_do_not_read_later_bins(context):
    torch.manual_seed(0)
    model = tiny(causal_smoothing=True, left_context_s=context).eval()
    x = torch.randn(1, 60, C)
    k = 6  # patches 0..5 read bins 0 .. 5 * 3 + 4 - 1 = 18
    later = x.clone()
    later[:, 5 * 3 + 4 :] = torch.randn(1, 60 - 19, C) * 5
    a, b = model(x, torch.tensor([0])), model(later, torch.tensor([0]))
    torch.testing.assert_close(a[:, :k], b[:, :k], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[:, k:], b[:, k:])
    bidirectional = tiny(bidirectional=True, causal_smoothing=True).eval()
    a, b = bidirectional(x, torch.tensor([0])), bidirectional(later, torch.tensor([0]))
    assert not torch.allclose(a[:, :k], b[:, :k])  # the check can fail


def test_one_layer_sees_exactly_its_left_context():
    # one layer, context 0.12 s = 2 patches of stride 3: patch 10 reads patches 8..10 only
    torch.manual_seed(0)
    model = tiny(n_layers=1, left_context_s=0.12, kernel_len=3, gaussian_smooth_width=0.0).eval()
    x = torch.randn(1, 45, C)
    earlier = x.clone()
    earlier[:, : 8 * 3] = torch.randn(1, 24, C)  # the bins of patches 0..7
    a, b = model(x, torch.tensor([0])), model(earlier, torch.tensor([0]))
    torch.testing.assert_close(a[:, 10:], b[:, 10:], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[:, 9], b[:, 9])  # patch 9 reads patch 7


def test_training_draws_its_context_from_the_global_generator():
    model = tiny(left_context_s=0.3, left_context_train_s=(0.12, 1.5))
    lo, hi = context_patches(0.12, 3), context_patches(1.5, 3)
    torch.manual_seed(1)
    draws = [model.left_context() for _ in range(200)]
    assert all(lo <= d <= hi for d in draws) and min(draws) <= lo + 2 and max(draws) >= hi - 2
    torch.manual_seed(1)
    assert [model.left_context() for _ in range(200)] == draws  # seeded runs reproduce
    assert model.eval().left_context() == context_patches(0.3, 3)  # evaluation: the fixed one
    assert tiny(bidirectional=True).train().left_context() is None


def test_seeded_training_forward_passes_reproduce():
    x, days = torch.randn(2, 40, C), torch.tensor([0, 1])
    model = tiny(left_context_train_s=(0.12, 0.6)).train()
    torch.manual_seed(5)
    a = model(x, days)
    torch.manual_seed(5)
    assert torch.equal(a, model(x, days))


def test_diphone_targets_and_the_learned_mask_token():
    model = TransformerDecoder(
        TINY.model_copy(update={"targets": "diphone"}), 2, C, mask_token=True
    ).eval()
    x, days = torch.randn(2, 30, C), torch.tensor([0, 1])
    phonemes, diphones = model(x, days, diphones=True)
    assert phonemes.shape == (2, 9, N_CLASSES) and diphones.shape == (2, 9, N_DIPHONE_CLASSES)
    assert torch.allclose(phonemes.exp().sum(-1), torch.ones(2, 9), atol=1e-5)
    with torch.no_grad():
        model.mask_token.fill_(3.0)
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[:, :5] = True
    assert not torch.allclose(model(x, days, time_mask=mask), phonemes)


def test_weights_name_the_input_width_for_checkpoint_loading(tmp_path):
    model = tiny()  # day_layers none: no day layer to read the width from
    state = model.state_dict()
    assert "day_weights" not in state and "relative_bias.weight" in state
    assert feature_count(tmp_path / "x.pt", state, TINY.kernel_len) == C
    assert "relative_bias.weight" not in tiny(position="sinusoidal").state_dict()


# --- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update, words",
    [
        ({"d_model": 10, "n_heads": 3}, ["model.d_model=10", "model.n_heads=3"]),
        ({"left_context_s": 0.07}, ["model.left_context_s=0.07", "model.kernel_len=4"]),
        ({"left_context_train_s": (0.05, 2.0)}, ["model.left_context_train_s", "one patch"]),
        ({"left_context_train_s": (3.0, 2.0)}, ["model.left_context_train_s=[3, 2]", "low end"]),
        ({"left_context_s": 5.0, "bidirectional": True}, ["left_context_s", "bidirectional"]),
        ({"left_context_train_s": (1.0, 2.0), "kind": "gru"}, ["left_context_train_s", "gru"]),
    ],
)
def test_bad_transformer_options_are_one_line_naming_the_keys(update, words):
    with pytest.raises(ValidationError) as info:
        ModelConfig(**{**TINY.model_dump(), **update})
    message = info.value.errors()[0]["msg"]
    assert "\n" not in message and all(w in message for w in words), message


def test_option_edges_that_are_allowed():
    ModelConfig(**{**TINY.model_dump(), "left_context_s": 0.08})  # exactly one patch
    ModelConfig(**{**TINY.model_dump(), "left_context_train_s": (0.08, 0.08)})
    ModelConfig(kind="gru", d_model=10, n_heads=3)  # a GRU ignores the Transformer's shape


# --- the run files -------------------------------------------------------------------------


def test_the_paper_transformer_has_its_published_size():
    b2t24 = load_run(RUNS / "b2t24_transformer.yaml")
    n24 = count_parameters(new_model(b2t24, n_days=24, n_features=256))
    assert abs(n24 - 9.4e6) < 0.01 * 9.4e6  # FACTS §11: about 9.4M (256 features x 5 bins)
    b2t25 = load_run(RUNS / "b2t25_transformer.yaml")
    n25 = count_parameters(new_model(b2t25, n_days=45, n_features=512))
    # the same network with the wider patches of 512 features x 4 bins and a wider mask token
    wider = (512 * 4 - 256 * 5) * (384 + 2) + (512 - 256)
    assert n25 == n24 + wider and abs(n25 - 9.4e6) < 0.04 * 9.4e6


@pytest.mark.parametrize(
    "name, n_features",
    [
        ("b2t25_transformer", 512),
        ("b2t24_transformer", 256),
        ("b2t25_transformer_cpu", 256),
        ("b2t24_transformer_cpu", 256),
    ],
)
def test_each_transformer_run_file_trains_a_step(name, n_features):
    config = load_run(RUNS / f"{name}.yaml", ["train.use_amp=false"])
    m = config.model
    assert (m.kind, m.bidirectional, m.day_layers) == ("transformer", False, "none")
    assert m.log_input and m.causal_smoothing  # the paper's recipe, streamable
    assert config.augment.time_masks is not None and config.augment.time_masks.fill == "learned"
    model = trained_a_step(config, n_features)
    assert model.mask_token is not None


def test_the_demo_sized_transformer_is_its_parent_with_the_tuned_changes():
    parent = load_run(RUNS / "b2t24_transformer_cpu.yaml", ["train.use_amp=false"])
    config = load_run(RUNS / "transformer_cpu_demo.yaml", ["train.use_amp=false"])
    m = config.model
    assert (m.kernel_len, m.stride_len, m.day_layers) == (16, 4, "per_day")
    assert (m.dropout, m.input_dropout, config.augment.time_masks) == (0.1, 0.1, None)
    changed = {"kernel_len", "stride_len", "day_layers", "dropout", "input_dropout"}
    assert m.model_copy(update={k: getattr(parent.model, k) for k in changed}) == parent.model
    assert (config.optim, config.train) == (parent.optim, parent.train)
    model = trained_a_step(config, 256)
    assert model.mask_token is None and model.day_weights is not None


def trained_a_step(config, n_features: int):
    """A model of ``config`` after one training step on two random trials (the step's loss
    is finite and the patch embedding moved)."""
    torch.manual_seed(0)
    model = new_model(config, n_days=2, n_features=n_features)
    n_bins = torch.tensor([40, 33])
    features = torch.randn(2, 40, n_features)
    features[1, 33:] = 0
    batch = Batch(
        features,
        n_bins,
        torch.tensor([[3, 5, 40], [7, 40, 0]]),
        torch.tensor([3, 2]),
        torch.tensor([0, 1]),
        torch.tensor([0, 1]),
    )
    cpu = torch.device("cpu")
    learner = Learner(
        model,
        model,
        build_optimizer(model, config.optim),
        build_scaler(config, cpu),
        StepOptions.of_run(config),
        torch.Generator().manual_seed(0),
        None,
        Dist(),
    )
    before = model.patch_embedding.weight.detach().clone()
    result = train_step(learner, batch)
    assert result.problem is None and math.isfinite(result.loss)
    assert not torch.equal(before, model.patch_embedding.weight)
    return model
