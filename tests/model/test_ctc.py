"""CTC arithmetic against torch's own loss and naive references (hypothesis where exact)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from brain2text.model.ctc import (
    ctc_frames_needed,
    ctc_input_lengths,
    ctc_losses,
    output_lengths,
)
from brain2text.phonemes import BLANK, N_CLASSES


def naive_frames_needed(labels: list[int]) -> int:
    """One frame per label, plus a blank wherever a label repeats the one before it."""
    return sum(1 + (i > 0 and labels[i] == labels[i - 1]) for i in range(len(labels)))


def naive_output_length(n_bins: int, kernel: int, stride: int) -> int:
    """The number of windows of ``kernel`` bins starting every ``stride`` bins."""
    return len(range(0, n_bins - kernel + 1, stride))


@st.composite
def ctc_batches(draw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (B, T', 41), output lengths (B,), padded targets (B, S), target lengths (B,).

    Few classes and long targets against short outputs: repeats and impossible alignments
    (more frames needed than there are) come up often."""
    b = draw(st.integers(1, 5))
    t_max = draw(st.integers(1, 12))
    out_lengths = draw(st.lists(st.integers(1, t_max), min_size=b, max_size=b))
    target_lengths = draw(st.lists(st.integers(0, 14), min_size=b, max_size=b))
    s = max(max(target_lengths), 1)
    n_labels = draw(st.integers(1, 4))  # labels 1..n_labels: a small alphabet repeats often
    targets = [draw(st.lists(st.integers(1, n_labels), min_size=s, max_size=s)) for _ in range(b)]
    seed = draw(st.integers(0, 2**16))
    logits = torch.randn(b, t_max, N_CLASSES, generator=torch.Generator().manual_seed(seed)) * 3
    return logits, torch.tensor(out_lengths), torch.tensor(targets), torch.tensor(target_lengths)


@settings(max_examples=60, deadline=None)
@given(batch=ctc_batches())
def test_mean_of_per_trial_losses_is_torchs_mean_reduction(batch):
    logits, out_lengths, targets, target_lengths = batch
    ours = ctc_losses(logits, out_lengths, targets, target_lengths)
    torchs = F.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        targets,
        out_lengths,
        target_lengths,
        blank=BLANK,
        reduction="mean",
        zero_infinity=True,
    )
    assert ours.shape == (len(logits),)
    assert ours.mean().item() == pytest.approx(torchs.item(), rel=1e-5, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(batch=ctc_batches())
def test_impossible_alignments_are_exactly_the_ones_needing_more_frames(batch):
    logits, out_lengths, targets, target_lengths = batch
    ours = ctc_losses(logits, out_lengths, targets, target_lengths)
    raw = F.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        targets,
        out_lengths,
        target_lengths,
        blank=BLANK,
        reduction="none",
        zero_infinity=False,
    )
    for i in range(len(logits)):
        labels = targets[i, : target_lengths[i]].tolist()
        needed = ctc_frames_needed(np.array(labels, dtype=np.int64))
        assert needed == naive_frames_needed(labels)
        if needed > out_lengths[i]:  # no alignment fits: infinite, zeroed by zero_infinity
            assert torch.isinf(raw[i]) and ours[i].item() == 0.0
        else:  # a finite loss, divided by the target length (1 for an empty target)
            assert torch.isfinite(raw[i]) and raw[i] > 0
            expected = raw[i].item() / max(len(labels), 1)
            assert ours[i].item() == pytest.approx(expected, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(batch=ctc_batches())
def test_logits_past_a_trials_output_length_do_not_count(batch):
    logits, out_lengths, targets, target_lengths = batch
    garbage = logits.clone()
    for i, n in enumerate(out_lengths.tolist()):
        garbage[i, n:] = 1e3 * torch.randn(garbage.shape[1] - n, N_CLASSES)
    assert torch.equal(
        ctc_losses(logits, out_lengths, targets, target_lengths),
        ctc_losses(garbage, out_lengths, targets, target_lengths),
    )


def test_ctc_frames_needed_edges():
    assert ctc_frames_needed(np.array([], dtype=np.int64)) == 0
    assert ctc_frames_needed(np.array([5])) == 1
    assert ctc_frames_needed(np.array([5, 5])) == 3  # 5 _ 5
    assert ctc_frames_needed(np.array([5, 5, 5])) == 5
    assert ctc_frames_needed(np.array([1, 2, 1])) == 3  # no adjacent repeat, no blank needed
    assert ctc_frames_needed(np.array([1, 2, 2, 3, 3])) == 7


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.integers(1, 3), max_size=30))
def test_ctc_frames_needed_matches_the_naive_count(labels):
    assert ctc_frames_needed(np.array(labels, dtype=np.int64)) == naive_frames_needed(labels)


def test_output_lengths_edges():
    k, s = 32, 4
    assert output_lengths(0, k, s) == 0
    assert output_lengths(k - 1, k, s) == 0  # shorter than the kernel: no window
    assert output_lengths(k, k, s) == 1  # exactly the kernel: one window
    assert output_lengths(k + s - 1, k, s) == 1 and output_lengths(k + s, k, s) == 2
    n = torch.tensor([0, k - 1, k, k + s - 1, k + s])
    got = output_lengths(n, k, s)
    assert isinstance(got, torch.Tensor) and got.tolist() == [0, 0, 1, 1, 2]
    assert output_lengths(5, 1, 1) == 5  # a kernel of one bin, stride one: every bin


@settings(max_examples=80, deadline=None)
@given(t=st.integers(0, 200), kernel=st.integers(1, 40), stride=st.integers(1, 8))
def test_output_lengths_count_the_windows(t, kernel, stride):
    expected = naive_output_length(t, kernel, stride)
    assert output_lengths(t, kernel, stride) == expected
    assert output_lengths(torch.tensor([t, t]), kernel, stride).tolist() == [expected] * 2


@settings(max_examples=80, deadline=None)
@given(t=st.integers(0, 200), kernel=st.integers(1, 40), stride=st.integers(1, 8))
def test_ctc_input_lengths_exact_and_reference(t, kernel, stride):
    exact = ctc_input_lengths(t, kernel, stride, "exact")
    reference = ctc_input_lengths(t, kernel, stride, "reference")
    assert exact == naive_output_length(t, kernel, stride)
    if t >= kernel:
        # the reference decoder's own formula: (T - K) / S truncated, one frame short of T'
        assert reference == int((t - kernel) / stride) == exact - 1
    else:
        assert reference == 0 and exact == 0
    tensors = torch.tensor([t])
    assert ctc_input_lengths(tensors, kernel, stride, "exact").tolist() == [exact]
    assert ctc_input_lengths(tensors, kernel, stride, "reference").tolist() == [reference]
    assert ctc_input_lengths(t, kernel, stride) == exact  # exact is the default
