import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from brain2text.config import AugmentConfig
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
