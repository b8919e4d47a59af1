"""CTC arithmetic of the patched GRU: output lengths, the frames an alignment needs, losses.

The model turns ``T`` bins into ``T' = (T - K) // S + 1`` output frames (``K = kernel_len``,
``S = stride_len``). The reference decoder passes ``(T - K) / S`` truncated to the CTC loss as
the input length, one frame short; ``model.ctc_input_lengths: reference`` reproduces that.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from brain2text.phonemes import BLANK

CtcLengths = Literal["exact", "reference"]


def output_lengths(n_bins: torch.Tensor | int, kernel_len: int, stride_len: int):
    """Model output length for inputs of ``n_bins`` bins (0 where shorter than the kernel)."""
    if isinstance(n_bins, torch.Tensor):
        return torch.clamp((n_bins - kernel_len) // stride_len + 1, min=0)
    return max((n_bins - kernel_len) // stride_len + 1, 0)


def ctc_input_lengths(
    n_bins: torch.Tensor | int, kernel_len: int, stride_len: int, mode: CtcLengths = "exact"
):
    """The input lengths given to the CTC loss: the true output length (``exact``) or the
    reference's ``int((T - K) / S)``, one frame fewer (``reference``; 0 at the shortest)."""
    n_out = output_lengths(n_bins, kernel_len, stride_len)
    if mode == "exact":
        return n_out
    if isinstance(n_out, torch.Tensor):
        return torch.clamp(n_out - 1, min=0)
    return max(n_out - 1, 0)


def ctc_frames_needed(phonemes: np.ndarray) -> int:
    """Frames a CTC alignment needs: one per label plus a blank between repeated labels."""
    return int(len(phonemes) + np.count_nonzero(phonemes[1:] == phonemes[:-1]))


def ctc_losses(logits: torch.Tensor, out_lengths, targets, target_lengths) -> torch.Tensor:
    """Per-trial CTC loss divided by target length, as torch's ``reduction="mean"`` averages.

    (B, T', classes) logits -> (B,) losses; impossible alignments give 0 (``zero_infinity``)."""
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T', B, classes)
    losses = F.ctc_loss(
        log_probs,
        targets,
        out_lengths,
        target_lengths,
        blank=BLANK,
        reduction="none",
        zero_infinity=True,
    )
    return losses / target_lengths.clamp(min=1)
