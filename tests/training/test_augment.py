import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.config import AugmentConfig
from brain2text.model.masking import max_span_width, time_mask_spans
from brain2text.sections import TimeMasksConfig
from brain2text.training.augment import augment_batch, span_masks


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-d boolean tensor."""
    runs, n = [], 0
    for v in row.tolist() + [False]:
        if v:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 80), min_size=1, max_size=6),
    prob=st.floats(0, 1),
    width=st.integers(0, 50),
    max_masks=st.integers(0, 4),
    seed=st.integers(0, 2**31),
)
def test_span_masks_respect_their_limits(lengths, prob, width, max_masks, seed):
    size = 80
    lens = torch.tensor(lengths)
    mask = span_masks(lens, size, prob, width, max_masks, torch.Generator().manual_seed(seed))
    assert mask.shape == (len(lengths), size)
    for row, n in zip(mask, lengths, strict=False):
        assert not row[n:].any()  # never the padding
        assert row.sum() <= max_masks * max(width, 0)
        assert len(_runs(row)) <= max_masks


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 80), min_size=1, max_size=6),
    zero=st.sampled_from(["prob", "width", "max_masks"]),
    prob=st.floats(0, 1),
    width=st.integers(0, 50),
    max_masks=st.integers(0, 4),
    seed=st.integers(0, 2**31),
)
def test_span_masks_are_empty_when_any_limit_is_zero(lengths, zero, prob, width, max_masks, seed):
    limits = {"prob": prob, "width": width, "max_masks": max_masks, zero: 0}
    mask = span_masks(
        torch.tensor(lengths),
        80,
        limits["prob"],
        limits["width"],
        limits["max_masks"],
        torch.Generator().manual_seed(seed),
    )
    assert not mask.any()


def test_span_masks_always_fire_with_prob_one():
    lens = torch.tensor([100] * 200)
    mask = span_masks(lens, 100, 1.0, 40, 2, torch.Generator().manual_seed(0))
    counts = mask.sum(dim=1)
    assert (counts >= 1).all() and (counts <= 80).all()
    assert counts.float().mean() > 20  # two spans of mean width ~20, some overlap


def test_mask_width_never_exceeds_a_short_trial():
    mask = span_masks(torch.tensor([3]), 50, 1.0, 40, 2, torch.Generator().manual_seed(1))
    assert mask[0, :3].any() and not mask[0, 3:].any()


def test_augment_noise_offset_and_masks():
    x = torch.zeros(4, 50, 256)
    lens = torch.tensor([50, 40, 30, 20])
    cfg = AugmentConfig(white_noise_sd=0.0, constant_offset_sd=1.0)
    y, _ = augment_batch(x, lens, cfg, torch.Generator().manual_seed(0))
    # a constant offset: the same for every bin of a trial, different between trials
    assert torch.allclose(y[:, 0], y[:, 37]) and not torch.allclose(y[0, 0], y[1, 0])
    cfg = AugmentConfig(white_noise_sd=0.8, constant_offset_sd=0.0)
    y, _ = augment_batch(x, lens, cfg, torch.Generator().manual_seed(0))
    assert abs(y.std().item() - 0.8) < 0.02
    cfg = AugmentConfig(
        white_noise_sd=0.0,
        constant_offset_sd=0.0,
        freq_mask_prob=1.0,
        freq_mask_width=12,
        freq_mask_max_masks=2,
    )
    y, _ = augment_batch(torch.ones(4, 50, 256), lens, cfg, torch.Generator().manual_seed(0))
    zero_cols = (y == 0).all(dim=1)  # (B, C): features masked for every bin
    assert ((zero_cols.sum(dim=1) >= 1) & (zero_cols.sum(dim=1) <= 24)).all()


def test_augment_is_reproducible_with_a_seed():
    x = torch.randn(2, 30, 256)
    lens = torch.tensor([30, 25])
    cfg = AugmentConfig(time_mask_prob=0.5, time_mask_width=10, time_mask_max_masks=2)
    a, _ = augment_batch(x, lens, cfg, torch.Generator().manual_seed(3))
    b, _ = augment_batch(x, lens, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_random_cut_drops_the_same_first_bins_of_the_whole_batch():
    from brain2text.training.augment import random_cut

    x = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    lengths = torch.tensor([10, 7])
    cuts = set()
    for seed in range(40):
        y, n = random_cut(x, lengths, 3, min_bins=2, generator=torch.Generator().manual_seed(seed))
        k = 10 - y.shape[1]
        cuts.add(k)
        assert torch.equal(y, x[:, k:]) and torch.equal(n, lengths - k)
    assert cuts == {0, 1, 2, 3}
    y, n = random_cut(
        x, torch.tensor([10, 3]), 3, min_bins=2, generator=torch.Generator().manual_seed(0)
    )
    assert n.min() >= 2  # never shorter than the kernel
    assert random_cut(x, lengths, 0, 2)[0] is x


# ----------------------------------------------------------------------- heavy time masking


def _expected_masked_fraction(length: int, count: int, max_fraction: float) -> float:
    """Exact mean masked share of a trial of ``length`` bins under ``time_mask_spans``: a bin
    escapes one span with probability 1 - p_t (p_t averaged over the uniform widths and the
    uniform starts of each width), and escapes all ``count`` independent spans with
    (1 - p_t) ** count."""
    share = Fraction(str(max_fraction)) * length
    widest = min(max(1, share.numerator // share.denominator), length)
    escaped = 0.0
    for t in range(length):
        p = 0.0
        for w in range(1, widest + 1):
            starts = min(t, length - w) - max(0, t - w + 1) + 1  # starts whose span holds t
            p += max(starts, 0) / (length - w + 1)
        escaped += (1 - p / widest) ** count
    return 1 - escaped / length


def test_the_expected_share_of_the_published_masks_is_about_half():
    # 20 masks of up to 7.5% (B2T'24) cover about half a trial; up to 5% (B2T'25) about 40%
    assert 0.45 < _expected_masked_fraction(300, 20, 0.075) < 0.55
    assert 0.35 < _expected_masked_fraction(300, 20, 0.05) < 0.45
    assert _expected_masked_fraction(10, 1, 0.05) == pytest.approx(0.1)  # one bin of ten


@settings(max_examples=12, deadline=None)
@given(
    length=st.integers(40, 300),
    count=st.integers(1, 30),
    max_fraction=st.sampled_from([0.01, 0.05, 0.075, 0.1, 0.3]),
    seed=st.integers(0, 2**31),
)
def test_the_masked_share_has_its_expected_mean(length, count, max_fraction, seed):
    n = 1500
    mask = time_mask_spans(
        torch.full((n,), length),
        length,
        count,
        max_fraction,
        torch.Generator().manual_seed(seed),
    )
    share = mask.float().mean(dim=1).double()
    expected = _expected_masked_fraction(length, count, max_fraction)
    sigma = max(share.std().item(), 1e-3) / math.sqrt(n)
    assert abs(share.mean().item() - expected) < 5 * sigma + 1e-4


def test_the_published_masks_match_their_expectation_on_long_trials():
    mask = time_mask_spans(
        torch.full((4000,), 400), 400, 20, 0.05, torch.Generator().manual_seed(0)
    )
    share = mask.float().mean(dim=1)
    assert share.mean().item() == pytest.approx(_expected_masked_fraction(400, 20, 0.05), abs=3e-3)
    assert share.max().item() <= 20 * 0.05  # 20 spans of at most 20 bins


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 120), min_size=1, max_size=6),
    pad=st.integers(0, 20),
    count=st.integers(0, 25),
    max_fraction=st.floats(0.001, 1.0),
    seed=st.integers(0, 2**31),
)
def test_time_mask_spans_respect_their_limits(lengths, pad, count, max_fraction, seed):
    size = max(lengths) + pad
    lens = torch.tensor(lengths)
    mask = time_mask_spans(lens, size, count, max_fraction, torch.Generator().manual_seed(seed))
    again = time_mask_spans(lens, size, count, max_fraction, torch.Generator().manual_seed(seed))
    assert mask.shape == (len(lengths), size) and mask.dtype == torch.bool
    assert torch.equal(mask, again)  # the generator decides everything
    for row, n in zip(mask, lengths, strict=True):
        assert not row[n:].any()  # never the padding
        widest = max(1, math.floor(max_fraction * n + 1e-9))
        assert row.sum() <= count * widest
        assert len(_runs(row)) <= count
        if n * max_fraction >= 1:  # a span of max_fraction holds a bin: the share is bounded
            assert row.sum() <= count * max_fraction * n + 1e-9
        assert (row.sum() > 0) == (count > 0 and n > 0)  # every span holds at least a bin


def test_max_span_width_floors_the_share_exactly():
    widths = max_span_width(torch.tensor([0, 1, 10, 19, 20, 60, 400]), 0.05)
    assert widths.tolist() == [0, 1, 1, 1, 1, 3, 20]  # 0.05 x 60 is 3, not 2.999...


def _heavy(fill: str, count: int = 20) -> AugmentConfig:
    return AugmentConfig(
        white_noise_sd=0.0,
        constant_offset_sd=0.0,
        time_masks=TimeMasksConfig(count=count, max_fraction=0.075, fill=fill),
    )


def test_zero_fill_zeroes_the_drawn_spans_and_nothing_else():
    x = torch.randn(3, 90, 8) + 5.0  # no real value is 0
    lens = torch.tensor([90, 60, 41])
    y, token_mask = augment_batch(x, lens, _heavy("zero"), torch.Generator().manual_seed(4))
    spans = time_mask_spans(lens, 90, 20, 0.075, torch.Generator().manual_seed(4))
    assert token_mask is None
    assert torch.equal(y == 0, spans[:, :, None].expand_as(x))  # whole bins, all features
    assert torch.equal(y[~spans], x[~spans])
    assert 0.3 < spans[0].float().mean() < 0.7  # about half of the longest trial


def test_learned_fill_leaves_the_features_and_returns_the_spans():
    x = torch.randn(3, 90, 8)
    lens = torch.tensor([90, 60, 41])
    y, token_mask = augment_batch(x, lens, _heavy("learned"), torch.Generator().manual_seed(4))
    assert torch.equal(y, x)
    assert token_mask is not None
    assert torch.equal(
        token_mask, time_mask_spans(lens, 90, 20, 0.075, torch.Generator().manual_seed(4))
    )
    assert not token_mask[1, 60:].any() and not token_mask[2, 41:].any()
    assert augment_batch(x, lens, _heavy("learned", count=0))[1] is None


def test_heavy_masks_are_drawn_after_the_other_augmentation():
    # the noise, offset and SpecAugment draws of a run are the same with heavy masks as without
    x = torch.randn(2, 70, 8)
    lens = torch.tensor([70, 50])
    plain = AugmentConfig(time_mask_prob=0.5, time_mask_width=10, time_mask_max_masks=2)
    heavy = plain.model_copy(
        update={"time_masks": TimeMasksConfig(count=20, max_fraction=0.05, fill="learned")}
    )
    a, none = augment_batch(x, lens, plain, torch.Generator().manual_seed(9))
    b, token_mask = augment_batch(x, lens, heavy, torch.Generator().manual_seed(9))
    assert none is None and token_mask is not None and token_mask.any()
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------- run files


@pytest.mark.parametrize(
    ("run", "parent"),
    [("run13_timemask", "run13_onecycle_safe"), ("run13_timemask_cpu", "run13_cpu_demo")],
)
def test_the_time_masked_runs_are_their_parent_with_the_published_masks(run, parent):
    from brain2text.config import load_run

    child, base = load_run(run), load_run(parent)
    assert child.parent == parent
    # the B2T'24 recipe (Run #13 is on the 2023 data): 20 masks of up to 7.5%, zeroed as the
    # paper's GRU does
    assert child.augment.time_masks == TimeMasksConfig(count=20, max_fraction=0.075, fill="zero")
    assert base.augment.time_masks is None
    same = {"name", "parent", "description"}
    mine, theirs = child.to_dict(), base.to_dict()
    assert {k: v for k, v in mine.items() if k not in same | {"augment"}} == {
        k: v for k, v in theirs.items() if k not in same | {"augment"}
    }
    assert {**mine["augment"], "time_masks": None} == theirs["augment"]
    if run.endswith("_cpu"):  # comparable with the demo's run at the same batches
        t = child.train
        assert child.data.path == "demo_workspace/prepared"
        assert (t.n_batch, t.batch_size, t.eval_every, t.threads) == (400, 32, 100, 2)
