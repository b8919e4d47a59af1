"""Mixed precision of a forward pass: bf16 or fp16 autocast, or none (fp32)."""

from __future__ import annotations

import contextlib

import torch


def autocast_context(device: torch.device, use_amp: bool, amp_dtype: str):
    """``torch.autocast`` on ``device`` in ``amp_dtype`` ("bf16" or "fp16"), or a no-op."""
    if not use_amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp_dtype == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
