"""Diphone CTC classes (DCoND): blank + every (previous, current) pair of symbols.

The 40 symbols (39 phonemes + SIL, ids 1..40) each follow one of 41 contexts: the start of the
sentence (context 0, the blank's id) or a symbol. Class ``1 + prev * 40 + (cur - 1)`` is
"``cur`` after ``prev``", so there are ``1 + 41 * 40 = 1641`` classes, the blank at 0 as for
phonemes. A phoneme's log-probability at a frame is the log-sum over its 41 contexts
(:func:`phoneme_log_probs`); the blank's is the blank's.
"""

from __future__ import annotations

import torch

from brain2text.model.ctc import ctc_losses
from brain2text.phonemes import BLANK, N_CLASSES

N_SYMBOLS = N_CLASSES - 1  # 40: the phonemes and SIL
N_CONTEXTS = N_SYMBOLS + 1  # the sentence start, then each symbol
N_DIPHONE_CLASSES = 1 + N_CONTEXTS * N_SYMBOLS


def phoneme_log_probs(diphone_logits: torch.Tensor) -> torch.Tensor:
    """(..., 1641) diphone logits -> (..., 41) phoneme log-probabilities (normalised: their
    exponentials sum to 1 at every frame)."""
    log_p = diphone_logits.float().log_softmax(-1)
    blank = log_p[..., BLANK : BLANK + 1]
    pairs = log_p[..., 1:].unflatten(-1, (N_CONTEXTS, N_SYMBOLS))  # (..., context, symbol)
    return torch.cat([blank, pairs.logsumexp(-2)], dim=-1)


def diphone_targets(phonemes: torch.Tensor, n_phones: torch.Tensor) -> torch.Tensor:
    """(B, L) padded phoneme targets (ids 1..40) -> their (B, L) diphone classes; positions
    past each row's ``n_phones`` are 0."""
    previous = torch.zeros_like(phonemes)
    previous[:, 1:] = phonemes[:, :-1]
    classes = 1 + previous * N_SYMBOLS + (phonemes - 1)
    inside = torch.arange(phonemes.shape[1], device=phonemes.device)[None, :] < n_phones[:, None]
    return torch.where(inside, classes, torch.zeros_like(classes))


def diphone_alpha(schedule: tuple[float, float], progress: float) -> float:
    """The phoneme loss's weight at ``progress`` (0 at the first batch, 1 at the last) of a
    linear schedule from ``schedule[0]`` to ``schedule[1]``."""
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
