"""Diphone targets (DCoND): the class layout, the marginal every decoder reads, the targets, the
alpha schedule, the joint loss and its gradients, and the settings that cannot work."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from brain2text.config import load_run
from brain2text.errors import ConfigError, DataError
from brain2text.model.ctc import ctc_losses
from brain2text.model.diphones import (
    N_CONTEXTS,
    N_DIPHONE_CLASSES,
    N_SYMBOLS,
    START,
    diphone_alpha,
    diphone_class,
    diphone_targets,
    emitted_classes,
    joint_ctc_loss,
    phoneme_log_probs,
)
from brain2text.model.gru import GRUDecoder
from brain2text.phonemes import BLANK, N_CLASSES
from brain2text.sections import ModelConfig
from tests.conftest import RUNS

TINY = ModelConfig(
    n_units=8,
    n_layers=1,
    kernel_len=4,
    stride_len=2,
    gaussian_smooth_width=0.0,
    dropout=0.0,
    targets="diphone",
)


def test_the_layout_has_a_class_for_every_context_and_symbol():
    assert (N_SYMBOLS, N_CONTEXTS, N_DIPHONE_CLASSES) == (40, 41, 1641)
    classes = [diphone_class(p, c) for p in range(N_CONTEXTS) for c in range(1, N_SYMBOLS + 1)]
    assert sorted(classes) == list(range(1, N_DIPHONE_CLASSES))  # one each, blank apart
    assert diphone_class(START, 1) == 1 and diphone_class(N_SYMBOLS, N_SYMBOLS) == 1640
    assert emitted_classes(N_DIPHONE_CLASSES) == emitted_classes(N_CLASSES) == N_CLASSES


def test_the_marginal_is_normalised_and_sums_each_phonemes_diphones():
    torch.manual_seed(0)
    logits = 4 * torch.randn(2, 7, N_DIPHONE_CLASSES)
    log_p = phoneme_log_probs(logits)
    assert log_p.shape == (2, 7, N_CLASSES) and log_p.dtype == torch.float32
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2, 7))
    p = logits.softmax(-1)
    assert torch.allclose(log_p[..., BLANK].exp(), p[..., BLANK])
    for cur in (1, 17, N_SYMBOLS):  # the sum over the 41 contexts, one class at a time
        by_hand = sum(p[..., diphone_class(prev, cur)] for prev in range(N_CONTEXTS))
        torch.testing.assert_close(log_p[..., cur].exp(), by_hand)
    # half-precision logits give float32 log-probabilities, normalised as well
    half = phoneme_log_probs(logits.bfloat16())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.exp().sum(-1), torch.ones(2, 7))
    # a log-softmax of the marginal leaves it as it is: what every decoder applies
    torch.testing.assert_close(log_p.log_softmax(-1), log_p)


@pytest.mark.parametrize(
    "previous, current", [(START, 5), (5, 5), (N_SYMBOLS, 1), (3, N_SYMBOLS), (START, N_SYMBOLS)]
)
def test_a_distribution_on_one_diphone_gives_its_phoneme(previous, current):
    logits = torch.zeros(N_DIPHONE_CLASSES)
    logits[diphone_class(previous, current)] = 60.0
    log_p = phoneme_log_probs(logits)
    assert int(log_p.argmax()) == current
    assert log_p[current].exp().item() == pytest.approx(1.0, abs=1e-6)
    blank = torch.zeros(N_DIPHONE_CLASSES)
    blank[BLANK] = 60.0
    assert int(phoneme_log_probs(blank).argmax()) == BLANK


def test_targets_put_the_first_phoneme_after_the_start_and_repeats_after_themselves():
    phonemes = torch.tensor(
        [
            [7, 7, 7, 40],  # a repeated phoneme, then SIL
            [12, 40, 0, 0],  # padded
            [3, 9, 99, 99],  # past n_phones: whatever is there is not read
            [0, 0, 0, 0],  # an empty target
        ]
    )
    n_phones = torch.tensor([4, 2, 2, 0])
    got = diphone_targets(phonemes, n_phones)
    assert got.tolist() == [
        [diphone_class(START, 7), diphone_class(7, 7), diphone_class(7, 7), diphone_class(7, 40)],
        [diphone_class(START, 12), diphone_class(12, 40), 0, 0],
        [diphone_class(START, 3), diphone_class(3, 9), 0, 0],
        [0, 0, 0, 0],
    ]
    # the first position's class is the same whatever the row's length
    assert diphone_targets(phonemes[:1, :1], torch.tensor([1])).item() == diphone_class(START, 7)


@pytest.mark.parametrize("bad", [0, 41, -1])
def test_targets_outside_the_40_symbols_are_a_one_line_error(bad):
    phonemes = torch.tensor([[5, bad, 6]])
    with pytest.raises(DataError, match=rf"a phoneme target is {bad}: .*ids 1\.\.40") as info:
        diphone_targets(phonemes, torch.tensor([3]))
    assert "\n" not in str(info.value)
    assert diphone_targets(phonemes, torch.tensor([1])).tolist() == [[diphone_class(0, 5), 0, 0]]


def test_the_alpha_schedule_runs_from_its_first_value_to_its_second_and_clamps():
    assert diphone_alpha((0.1, 0.6), 0.0) == pytest.approx(0.1)
    assert diphone_alpha((0.1, 0.6), 1.0) == pytest.approx(0.6)
    assert diphone_alpha((0.1, 0.6), 0.5) == pytest.approx(0.35)
    assert diphone_alpha((0.1, 0.6), -3.0) == pytest.approx(0.1)
    assert diphone_alpha((0.1, 0.6), 7.0) == pytest.approx(0.6)
    assert diphone_alpha((0.8, 0.2), 0.25) == pytest.approx(0.65)  # downwards works too
    assert diphone_alpha((0.4, 0.4), 0.9) == pytest.approx(0.4)


def _batch(seed: int = 0):
    """Diphone logits (B, T', 1641) from a read-out, lengths and padded targets with repeats."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 12, 6, generator=g)
    readout = torch.nn.Linear(6, N_DIPHONE_CLASSES)
    torch.nn.init.normal_(readout.weight, std=1.0, generator=g)
    lengths = torch.tensor([12, 9, 10])
    phonemes = torch.tensor([[4, 4, 40, 9, 40], [1, 2, 3, 0, 0], [40, 0, 0, 0, 0]])
    n_phones = torch.tensor([5, 3, 1])
    return hidden, readout, lengths, phonemes, n_phones


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_the_joint_loss_is_the_weighted_sum_of_the_two_ctc_losses(alpha):
    hidden, readout, lengths, phonemes, n_phones = _batch()
    logits = readout(hidden)
    outputs = (phoneme_log_probs(logits), logits)
    loss = joint_ctc_loss(outputs, lengths, phonemes, n_phones, alpha)
    l_phoneme = ctc_losses(outputs[0], lengths, phonemes, n_phones).mean()
    l_diphone = ctc_losses(logits, lengths, diphone_targets(phonemes, n_phones), n_phones).mean()
    torch.testing.assert_close(loss, alpha * l_phoneme + (1 - alpha) * l_diphone)
    # each term is torch's own mean CTC loss (per target symbol), on its own classes
    for log_probs, targets in (
        (outputs[0], phonemes),
        (logits.log_softmax(-1), diphone_targets(phonemes, n_phones)),
    ):
        torch_mean = F.ctc_loss(
            log_probs.transpose(0, 1), targets, lengths, n_phones, blank=BLANK, zero_infinity=True
        )
        torch.testing.assert_close(
            ctc_losses(log_probs, lengths, targets, n_phones).mean(), torch_mean
        )
    assert l_phoneme.item() != pytest.approx(l_diphone.item(), rel=1e-3)


def test_both_terms_send_gradients_into_the_read_out():
    grads = {}
    for alpha in (0.0, 1.0):  # the diphone term alone, the phoneme term alone
        hidden, readout, lengths, phonemes, n_phones = _batch()
        logits = readout(hidden)
        loss = joint_ctc_loss(
            (phoneme_log_probs(logits), logits), lengths, phonemes, n_phones, alpha
        )
        loss.backward()
        assert readout.weight.grad is not None and torch.isfinite(readout.weight.grad).all()
        grads[alpha] = readout.weight.grad.clone()
        assert grads[alpha].abs().sum() > 0
    # the phoneme term reaches the rows of every context of a target phoneme, through the sum
    rows = grads[1.0].abs().sum(-1)
    assert all(rows[diphone_class(prev, 4)] > 0 for prev in range(N_CONTEXTS))
    assert not torch.allclose(grads[0.0], grads[1.0])


def test_a_diphone_gru_emits_phoneme_log_probabilities_and_its_diphones_on_request():
    torch.manual_seed(0)
    model = GRUDecoder(TINY, n_days=2, n_features=16).eval()
    assert model.readout.out_features == N_DIPHONE_CLASSES
    x, days = torch.randn(2, 30, 16), torch.tensor([0, 1])
    out = model(x, days)
    assert out.shape == (2, model.output_lengths(torch.tensor(30)).item(), N_CLASSES)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(out.shape[:2]))
    phonemes, diphones = model(x, days, diphones=True)
    assert torch.equal(phonemes, out) and diphones.shape[-1] == N_DIPHONE_CLASSES
    torch.testing.assert_close(phoneme_log_probs(diphones), out)
    phoneme_model = GRUDecoder(TINY.model_copy(update={"targets": "phoneme"}), 2, 16)
    assert phoneme_model(x, days, diphones=True).shape[-1] == N_CLASSES  # a tensor, no tuple


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_both_encoders_train_on_diphone_targets(kind):
    """Training's loss is the joint one at the run's progress, its gradients reach the 1641-wide
    read-out, and the trained encoder emits normalised phoneme log-probabilities."""
    from brain2text.data.batches import Batch
    from brain2text.model.factory import new_model
    from brain2text.training.step import StepOptions, batch_loss, reads_lengths

    small = {"n_units": 8, "n_layers": 1, "kernel_len": 4, "stride_len": 4, "d_model": 16}
    over = [f"model.{k}={v}" for k, v in {**small, "n_heads": 2, "kind": kind}.items()]
    config = load_run(RUNS / "dcond_gru_cpu.yaml", over)
    torch.manual_seed(0)
    model = new_model(config, n_days=2, n_features=16)
    assert model.readout.out_features == N_DIPHONE_CLASSES
    x, n_bins = torch.randn(2, 40, 16), torch.tensor([40, 32])
    batch = Batch(
        x, n_bins, torch.tensor([[3, 3, 40], [7, 40, 0]]), torch.tensor([3, 2]),
        torch.tensor([0, 1]), torch.tensor([0, 1]),
    )  # fmt: skip
    model.eval()  # no dropout: the same outputs twice
    options = StepOptions(config.model)  # no augmentation
    lengths = n_bins if reads_lengths(config.model) else None
    outputs = model(x, batch.day_index, lengths, diphones=True)
    frames = model.ctc_input_lengths(n_bins)
    for progress, alpha in ((0.0, 0.1), (1.0, 0.6)):
        loss = batch_loss(model, batch, options, torch.Generator(), progress=progress)
        expected = joint_ctc_loss(outputs, frames, batch.phonemes, batch.n_phones, alpha)
        torch.testing.assert_close(loss, expected)
    loss.backward()
    assert math.isfinite(loss.item()) and model.readout.weight.grad.abs().sum() > 0
    out = model(x, batch.day_index, n_bins)
    assert out.shape[-1] == N_CLASSES
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(out.shape[:2]))


@pytest.mark.parametrize("schedule", ["[-0.1, 0.6]", "[0.1, 1.5]", "[2, 3]"])
def test_alpha_outside_zero_one_is_refused_in_one_line(schedule):
    with pytest.raises(ConfigError, match=r"model\.diphone_alpha.*\[0, 1\]") as info:
        load_run(RUNS / "dcond_gru_cpu.yaml", [f"model.diphone_alpha={schedule}"])
    assert "\n" not in str(info.value)


def test_alpha_at_the_ends_of_zero_one_is_accepted():
    for schedule in ((0.0, 1.0), (1.0, 0.0), (0.0, 0.0)):
        override = f"model.diphone_alpha=[{schedule[0]}, {schedule[1]}]"
        assert load_run(RUNS / "dcond_gru_cpu.yaml", [override]).model.diphone_alpha == schedule


@pytest.mark.parametrize("trained, stored", [("phoneme", "diphone"), ("diphone", "phoneme")])
def test_a_checkpoint_whose_read_out_does_not_fit_its_config_is_refused(tmp_path, trained, stored):
    from brain2text.model.loading import load_model
    from brain2text.runs.checkpoint import Checkpoint, save_checkpoint

    small = ["model.n_units=8", "model.n_layers=1", "model.kernel_len=4"]
    weights_of = load_run(RUNS / "dcond_gru_cpu.yaml", [*small, f"model.targets={trained}"])
    claims = load_run(RUNS / "dcond_gru_cpu.yaml", [*small, f"model.targets={stored}"])
    state = GRUDecoder(weights_of.model, n_days=2, n_features=16).state_dict()
    path = tmp_path / "best.pt"
    save_checkpoint(path, Checkpoint(0, state, claims.to_dict(), ["d0", "d1"]))
    with pytest.raises(DataError) as info:
        load_model(path, torch.device("cpu"))
    width = {"phoneme": N_CLASSES, "diphone": N_DIPHONE_CLASSES}
    message = str(info.value)
    assert message.startswith(f"{path}: the model emits {width[trained]} classes")
    assert f"model.targets={stored}" in message and f"needs {width[stored]}" in message
    assert "\n" not in message
    save_checkpoint(path, Checkpoint(0, state, weights_of.to_dict(), ["d0", "d1"]))
    assert load_model(path, torch.device("cpu")).model.readout.out_features == width[trained]
