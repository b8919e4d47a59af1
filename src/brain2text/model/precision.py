"""Floating-point modes of a forward pass: bf16 or fp16 autocast, or none (fp32); and whether
the CPU flushes subnormal floats to zero."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# Elementwise CPU kernels split their work between threads in chunks of this many elements
# (``at::internal::GRAIN_SIZE``): a probe this long per thread reaches every thread of the pool.
_CPU_GRAIN = 32768


def autocast_context(device: torch.device, use_amp: bool, amp_dtype: str):
    """``torch.autocast`` on ``device`` in ``amp_dtype`` ("bf16" or "fp16"), or a no-op."""
    if not use_amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp_dtype == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def flush_denormals(enabled: bool) -> bool:
    """Flush subnormal floats to zero on the CPU (``torch.set_flush_denormal``), or stop doing
    so; returns whether subnormals are flushed now, in every thread torch computes on.

    Why: as training goes on, some of its numbers (derivatives of saturated gates, tiny
    gradients, the optimizer's moments) drift below float32's smallest normal value, 1.2e-38,
    and CPU arithmetic on such subnormal numbers is many times slower: CPU training then slows
    down batch after batch. Flushed to zero they cost what any float costs; results change by
    less than 1.2e-38 where they change at all, and stay bit-reproducible.

    The mode is a per-thread CPU setting that threads inherit when they start: called before
    torch's intra-op thread pool exists (before the first parallel operation of the process),
    it holds in every thread; called later, the pool's threads keep their mode, which the
    returned value then shows. Hence training calls it first thing, through
    :func:`denormals_flushed`, which gives the calling thread its mode back afterwards."""
    supported = torch.set_flush_denormal(enabled)
    if not supported:  # a CPU without the DAZ/FTZ flags: nothing is flushed
        return False
    # the bits of integer 1 are float32's smallest subnormal (1.4e-45); made from an integer,
    # not a float, so that a flushing thread cannot turn it into 0 before the test
    n = 2 * _CPU_GRAIN * torch.get_num_threads()
    probe = torch.ones(n, dtype=torch.int32).view(torch.float32)
    return bool(torch.count_nonzero(probe * 1.0) == 0)  # each thread multiplies its chunk


def _flushing_here() -> bool:
    """Whether the calling thread flushes subnormals now (one element: no other thread)."""
    smallest = torch.ones(1, dtype=torch.int32).view(torch.float32)  # 1.4e-45
    return bool((smallest * 1.0).item() == 0.0)


@contextlib.contextmanager
def denormals_flushed(enabled: bool) -> Iterator[bool]:
    """:func:`flush_denormals` for the block (yields whether it holds in every thread); the
    calling thread's mode before it is restored on the way out, so that code running after a
    training, an evaluation or a decoding in the same process sees IEEE subnormals again where
    it saw them before (threads that torch started inside the block keep the block's mode)."""
    before = _flushing_here()
    try:
        yield flush_denormals(enabled)
    finally:
        torch.set_flush_denormal(before)
