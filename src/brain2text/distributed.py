"""Several processes, one run: DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m brain2text train RUN_FILE ...`` (or ``brain2text train
RUN_FILE --nproc N``, which launches exactly that) starts N copies of the command; each reads
its rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

How a run is split:

* the global batch (``train.batch_size``) is the unit of training: every rank draws the same
  batch, takes its contiguous share of ``batch_size / N`` trials, and pads them to the longest
  trial of the *global* batch, so a rank sees exactly the rows a single process would see (the
  bidirectional GRU is not length-masked, so padding length matters);
* gradients are averaged across ranks by DDP: with equal shares that is the gradient of the
  global batch's mean loss; the logged loss is the mean over ranks;
* evaluation batches (the same length-sorted batches a single process builds) are dealt out
  to the ranks in turn and the decoded results gathered, so every rank scores the same PER;
* rank 0 alone writes the run folder (logs, metrics, checkpoints, run.json, report).

On CUDA each rank uses ``cuda:LOCAL_RANK`` and the NCCL backend; on CPU, gloo.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from brain2text.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in the run (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` rows (``n`` divisible by the world size)."""
        size = n // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over ranks, element by element (itself in one process)."""
        if not self.enabled:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def environment() -> Dist:
    """The rank, world size and local rank torchrun put in the environment."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ConfigError(f"WORLD_SIZE/RANK/LOCAL_RANK must be integers ({exc})") from exc
    return Dist(rank, world, local)


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``train.device``: ``auto`` is CUDA when available (rank ``r`` on ``cuda:r``), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name}: CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


@contextlib.contextmanager
def session(device_name: str, batch_size: int) -> Iterator[tuple[Dist, torch.device]]:
    """Join the process group when launched by torchrun (left on exit); yields this process's
    :class:`Dist` and device. In one process it only picks the device."""
    env = environment()
    device = pick_device(device_name, env.local_rank)
    if not env.enabled:
        yield env, device
        return
    check_batch_split(batch_size, env.world_size)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
    try:
        yield Dist(env.rank, env.world_size, env.local_rank, backend), device
    finally:
        dist.destroy_process_group()


def check_batch_split(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise ConfigError(
            f"train.batch_size={batch_size} cannot be split evenly over "
            f"{world_size} processes; choose a multiple of {world_size}"
        )


def launch_command(n_proc: int, argv: list[str]) -> list[str]:
    """The torchrun command that runs ``brain2text <argv>`` in ``n_proc`` processes on this
    machine (``--standalone``: a local rendezvous, no master address to set)."""
    import sys

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={n_proc}",
        "-m",
        "brain2text",
        *argv,
    ]
