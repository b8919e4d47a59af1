"""Diphone CTC classes (DCoND, arXiv 2411.10657): blank + every (previous, current) pair.

The 40 symbols (39 phonemes + SIL, ids 1..40) each follow one of 41 contexts: the start of the
sentence (context 0, the blank's id) or a symbol. Class ``1 + prev * 40 + (cur - 1)`` is
"``cur`` after ``prev``", so there are ``1 + 41 * 40 = 1641`` classes, the blank at 0 as for
phonemes. A sentence's first phoneme takes the start context, so every phoneme of the target
has its diphone, the two CTC targets have the same length, and the start of a sentence is not
confused with the silence (SIL) that closes each of its words.

A phoneme's probability at a frame is the sum of its 41 diphones' (:func:`phoneme_log_probs`,
the marginal over the previous symbol); the blank's is the blank's. The marginal is normalised,
so every decoder and metric reads it as it reads a phoneme model's log-softmax. Training's loss
is ``alpha * L_phoneme + (1 - alpha) * L_diphone`` (:func:`joint_ctc_loss`), both CTC losses,
``L_phoneme`` on the marginal, ``alpha`` on a linear schedule over the run
(:func:`diphone_alpha`, ``model.diphone_alpha``).
"""

from __future__ import annotations

import torch

from brain2text.errors import DataError
from brain2text.model.ctc import ctc_losses
from brain2text.phonemes import BLANK, N_CLASSES

N_SYMBOLS = N_CLASSES - 1  # 40: the phonemes and SIL
N_CONTEXTS = N_SYMBOLS + 1  # the sentence start, then each symbol
N_DIPHONE_CLASSES = 1 + N_CONTEXTS * N_SYMBOLS
START = 0  # the context of a sentence's first phoneme


def diphone_class(previous: int, current: int) -> int:
    """The class of symbol ``current`` (1..40) after ``previous`` (1..40, or START)."""
    return 1 + previous * N_SYMBOLS + (current - 1)


def emitted_classes(read_out_width: int) -> int:
    """The columns a model with a read-out of this width emits: 41 phoneme log-probabilities
    for diphone targets (1641 wide), else the read-out's own width."""
    return N_CLASSES if read_out_width == N_DIPHONE_CLASSES else read_out_width


def phoneme_log_probs(
    diphone_logits: torch.Tensor,
    blank: int = BLANK,
    n_contexts: int = N_CONTEXTS,
    n_symbols: int = N_SYMBOLS,
) -> torch.Tensor:
    """(..., 1641) diphone logits -> (..., 41) float32 phoneme log-probabilities (normalised:
    their exponentials sum to 1 at every frame). The layout's sizes are default arguments so
    that ``torch.jit.script`` compiles it (it reads no module-level integer)."""
    log_p = diphone_logits.float().log_softmax(-1)
    pairs = log_p[..., 1:].unflatten(-1, [n_contexts, n_symbols])  # (..., context, symbol)
    return torch.cat([log_p[..., blank : blank + 1], pairs.logsumexp(-2)], dim=-1)


def diphone_targets(phonemes: torch.Tensor, n_phones: torch.Tensor) -> torch.Tensor:
    """(B, L) padded phoneme targets (ids 1..40) -> their (B, L) diphone classes, the first
    phoneme of each row after START; positions past each row's ``n_phones`` are 0. A
    DataError if a target inside a row is not one of the 40 symbols (another phoneme set's
    ids would silently name other diphones)."""
    inside = torch.arange(phonemes.shape[1], device=phonemes.device)[None, :] < n_phones[:, None]
    bad = inside & ((phonemes < 1) | (phonemes > N_SYMBOLS))
    if bool(bad.any()):
        value = int(phonemes[bad][0])
        raise DataError(
            f"a phoneme target is {value}: diphone targets (model.targets: diphone) need "
            f"the {N_SYMBOLS} symbols' ids 1..{N_SYMBOLS}; prepare the data with this package"
        )
    previous = torch.full_like(phonemes, START)
    previous[:, 1:] = phonemes[:, :-1]
    classes = 1 + previous * N_SYMBOLS + (phonemes - 1)
    return torch.where(inside, classes, torch.zeros_like(classes))


def diphone_alpha(schedule: tuple[float, float], progress: float) -> float:
    """The phoneme loss's weight at ``progress`` (0 at the first batch, 1 at the last, clamped
    to that range) of a linear schedule from ``schedule[0]`` to ``schedule[1]``."""
    start, end = schedule
    return start + (end - start) * min(max(progress, 0.0), 1.0)


def joint_ctc_loss(
    outputs: tuple[torch.Tensor, torch.Tensor],
    input_lengths: torch.Tensor,
    phonemes: torch.Tensor,
    n_phones: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """``alpha * L_phoneme + (1 - alpha) * L_diphone``, each the batch's mean CTC loss per
    target symbol, from the phoneme log-probabilities and the diphone logits."""
    phoneme_log_probs_, diphone_logits = outputs
    l_phoneme = ctc_losses(phoneme_log_probs_, input_lengths, phonemes, n_phones).mean()
    targets = diphone_targets(phonemes, n_phones)
    l_diphone = ctc_losses(diphone_logits, input_lengths, targets, n_phones).mean()
    return alpha * l_phoneme + (1 - alpha) * l_diphone
