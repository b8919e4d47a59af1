"""Greedy CTC decoding: best class per frame, merge repeats, drop blanks."""

from __future__ import annotations

import numpy as np
import torch

from brain2text.phonemes import BLANK


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
    """(B, T', classes) logits and (B,) valid lengths -> one id array per trial (vectorised)."""
    best = logits.argmax(dim=-1)  # (B, T')
    valid = torch.arange(best.shape[1], device=best.device)[None, :] < lengths[:, None]
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = (valid & changed & (best != BLANK)).cpu().numpy()
    ids = best.cpu().numpy()
    return [row[k] for row, k in zip(ids, keep, strict=False)]


def collapse(frames: np.ndarray) -> np.ndarray:
    """Reference CTC collapse of one frame sequence of class ids (merge repeats, drop blanks)."""
    frames = np.asarray(frames)
    if frames.size == 0:
        return frames
    keep = np.ones(frames.shape, dtype=bool)
    keep[1:] = frames[1:] != frames[:-1]
    return frames[keep & (frames != BLANK)]
