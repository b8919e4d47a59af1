"""One training step and what it is built from: seeding, the CPU's thread count and float
mode, the network DDP/compile wrap, the EMA, the loss scaler, the augmented CTC loss, backward
with clipping, and the optimizer update that a non-finite loss or gradient skips.

Training, ``lr-find`` and ``adapt`` all train through :func:`train_step` on a :class:`Learner`:
what differs between them is only what the learner holds (its optimizer, the weights it updates)
and its :class:`StepOptions` (training and lr-find take them from the run config; adapt fits one
day's input layer without augmentation)."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from brain2text.config import AugmentConfig, ModelConfig, RunConfig, TrainConfig
from brain2text.data.batches import Batch
from brain2text.distributed import Dist
from brain2text.model.ctc import ctc_input_lengths, ctc_losses
from brain2text.model.diphones import diphone_alpha, joint_ctc_loss
from brain2text.model.factory import SpeechModel
from brain2text.model.precision import autocast_context, denormals_flushed
from brain2text.training.augment import augment_batch, random_cut
from brain2text.training.optim import day_drift_penalty


def set_threads(threads: int | None) -> None:
    """``train.threads`` intra-op threads (None: torch's default). Training is bit-reproducible
    at a given thread count; different counts split reductions differently."""
    if threads:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class CpuMode:
    """The CPU settings a run trained under, for run.json."""

    threads: int  # torch intra-op threads
    flush_denormals: bool  # train.flush_denormals: asked for
    denormals_flushed: bool  # whether subnormals were flushed in every thread

    def to_dict(self) -> dict:
        return {
            "threads": self.threads,
            "flush_denormals": self.flush_denormals,
            "denormals_flushed": self.denormals_flushed,
        }


@contextlib.contextmanager
def cpu_mode(tc: TrainConfig) -> Iterator[CpuMode]:
    """``train.threads``, and ``train.flush_denormals`` for the block: entered first thing in a
    command that trains, before any tensor work starts torch's thread pool (whose threads take
    the float mode of the thread that starts them); the calling thread's float mode is given
    back on the way out (the thread count is left as set)."""
    set_threads(tc.threads)
    with denormals_flushed(tc.flush_denormals) as flushed:
        yield CpuMode(torch.get_num_threads(), tc.flush_denormals, flushed)


def seed_everything(
    seed: int, rank: int = 0, device: torch.device | None = None
) -> torch.Generator:
    """Seed python, numpy and torch; returns the augmentation generator, on ``device`` (CPU by
    default) since augmentation draws on the batch's device. Rank 0 (and a single process) uses
    ``seed`` itself; other ranks get streams of their own derived from (seed, rank), so their
    dropout masks and augmentation noise are not copies of rank 0's."""
    if rank:
        seed = int(np.random.SeedSequence((seed, rank)).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator(device=device or "cpu").manual_seed(seed)


def build_network(
    model: SpeechModel, config: RunConfig, ranks: Dist, device: torch.device
) -> torch.nn.Module:
    """What the training forward pass calls: the model, wrapped by DDP across ranks (its
    construction copies rank 0's weights to every rank) and by ``torch.compile`` when
    ``train.compile``. Evaluation and checkpoints use ``model`` itself."""
    net: torch.nn.Module = model
    if ranks.enabled:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if config.train.compile:
        compiled = torch.compile(net, dynamic=True)
        assert isinstance(compiled, torch.nn.Module)  # compiling a module gives a module
        net = compiled
    return net


def build_ema(model: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """EMA of ``model``'s weights and buffers (LayerNorm statistics, smoothing kernel), or None.
    Its first update copies the weights; each later one is ``decay * ema + (1 - decay) * w``."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def build_scaler(config: RunConfig, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling, on only for fp16 autocast on CUDA (bf16 and fp32 need none)."""
    tc = config.train
    enabled = tc.use_amp and tc.amp_dtype == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=enabled)


@dataclass(frozen=True)
class StepOptions:
    """How a step turns a batch into a loss and an update."""

    model: ModelConfig  # the kernel, stride and CTC input lengths of the model trained
    grad_accum: int = 1  # micro-batches per batch, their gradients summed (train.grad_accum)
    grad_clip_norm: float | None = None  # optim.grad_clip_norm (None: no clipping)
    augment: AugmentConfig | None = None  # random cut, noise and masks (None: the batch as is)
    use_amp: bool = False  # autocast the forward pass (train.use_amp, train.amp_dtype)
    amp_dtype: str = "bf16"
    packed: bool = False  # give the forward pass each trial's length (a bidirectional GRU
    # then reads each trial packed, as decoding does; training proper passes none, as the
    # reference)
    day_drift_l2: float = 0.0  # optim.day_drift_l2: the weight of adjacent days' input layers'
    # squared distance in the objective (0: off)

    @classmethod
    def of_run(cls, config: RunConfig) -> StepOptions:
        """The training loop's options (lr-find's too)."""
        tc = config.train
        return cls(
            config.model,
            tc.grad_accum,
            config.optim.grad_clip_norm,
            config.augment,
            tc.use_amp,
            tc.amp_dtype,
            day_drift_l2=config.optim.day_drift_l2,
        )


@dataclass(frozen=True)
class Learner:
    """What a training step reads and updates."""

    net: torch.nn.Module  # what the forward pass calls: ``model``, or it wrapped by DDP or
    # torch.compile (build_network)
    model: torch.nn.Module  # the weights themselves: clipped, averaged into the EMA
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    options: StepOptions
    generator: torch.Generator  # augmentation's draws, on the batch's device
    ema: AveragedModel | None = None
    ranks: Dist = field(default_factory=Dist)


def batch_loss(
    net: torch.nn.Module,
    batch: Batch,
    options: StepOptions,
    generator: torch.Generator,
    progress: float = 0.0,
) -> torch.Tensor:
    """Augment a training batch (already on its device), run the model (an encoder, or it
    wrapped by DDP or torch.compile), mean CTC loss (for diphone targets the joint loss, its
    weights at ``progress``, the fraction of the run done)."""
    mc = options.model
    features, n_bins = batch.features, batch.n_bins
    token_mask = None
    if options.augment is not None:
        ac = options.augment
        features, n_bins = random_cut(features, n_bins, ac.random_cut, mc.kernel_len, generator)
        features, token_mask = augment_batch(features, n_bins, ac, generator)
    kwargs: dict[str, object] = {}
    if token_mask is not None:
        kwargs["time_mask"] = token_mask
    if mc.targets == "diphone":
        kwargs["diphones"] = True
    with autocast_context(features.device, options.use_amp, options.amp_dtype):
        lengths = n_bins if options.packed or reads_lengths(mc) else None
        outputs = net(features, batch.day_index, lengths, **kwargs)
    n_in = ctc_input_lengths(n_bins, mc.kernel_len, mc.stride_len, mc.ctc_input_lengths)
    if isinstance(outputs, tuple):
        alpha = diphone_alpha(mc.diphone_alpha, progress)
        return joint_ctc_loss(outputs, n_in, batch.phonemes, batch.n_phones, alpha)
    return ctc_losses(outputs, n_in, batch.phonemes, batch.n_phones).mean()


def reads_lengths(mc: ModelConfig) -> bool:
    """Whether training must give this encoder each trial's length: a bidirectional
    Transformer would otherwise attend to the batch's padding (a GRU, as the reference, reads
    the padded batch)."""
    return mc.kind == "transformer" and mc.bidirectional


def drift_penalty(model: torch.nn.Module, l2: float) -> torch.Tensor | None:
    """``l2`` x the day drift of ``model``'s input layers
    (:func:`~brain2text.training.optim.day_drift_penalty`), or None: off, or no day layers."""
    weights, biases = getattr(model, "day_weights", None), getattr(model, "day_biases", None)
    if l2 <= 0 or weights is None or biases is None:
        return None
    return l2 * day_drift_penalty(weights, biases)


def clip_gradients(
    model: torch.nn.Module,
    scaler: torch.amp.GradScaler,
    optimizer: torch.optim.Optimizer,
    clip: float | None,
) -> float:
    """Unscale, clip to ``clip`` (None: no clipping); returns the pre-clip norm."""
    scaler.unscale_(optimizer)
    return torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip else math.inf).item()


def backward_clipped(
    loss: torch.Tensor,
    model: torch.nn.Module,
    scaler: torch.amp.GradScaler,
    optimizer: torch.optim.Optimizer,
    clip: float | None,
) -> float:
    """Backward, unscale, clip to ``clip`` (None: no clipping); returns the pre-clip norm."""
    scaler.scale(loss).backward()
    return clip_gradients(model, scaler, optimizer, clip)


def micro_batches(batch: Batch, n: int) -> list[Batch]:
    """``batch`` cut into ``n`` equal row slices (``train.grad_accum``), each keeping the whole
    batch's padding, so together they are exactly the rows of the batch."""
    if n == 1:
        return [batch]
    size = batch.features.shape[0] // n
    return [
        Batch(*(t[j * size : (j + 1) * size] for t in batch.__dict__.values())) for j in range(n)
    ]


@dataclass(frozen=True)
class StepResult:
    loss: float  # the global batch's mean loss (the same on every rank)
    grad_norm: float  # pre-clip; NaN when the loss was not finite
    problem: str | None  # why the update was skipped (non-finite loss or gradient), or None
    stop_requested: bool  # some rank was asked to stop (SIGTERM / SIGUSR1) during this step


def train_step(
    learner: Learner, batch: Batch, stop_flag: bool = False, progress: float = 0.0
) -> StepResult:
    """Forward, loss, backward (micro-batch by micro-batch with ``grad_accum``), clip and
    update; a step whose loss or gradient is not finite leaves the weights as they were (every
    rank skips it together). ``stop_flag``: this rank was asked to stop; ``progress``: the
    fraction of the run done (the diphone loss's schedule). The objective adds the day drift
    (``StepOptions.day_drift_l2``, once a batch, on the weights themselves); the loss reported
    is the model's loss alone (CTC, or the joint diphone loss), comparable with the evaluations'
    and with runs without the drift."""
    le, options = learner, learner.options
    device = batch.features.device
    le.optimizer.zero_grad(set_to_none=True)
    parts = micro_batches(batch, options.grad_accum)
    total = torch.zeros((), device=device)
    for part in parts:  # each backward right after its forward: one micro-batch in memory
        loss = batch_loss(le.net, part, options, le.generator, progress) / len(parts)
        drift = drift_penalty(le.model, options.day_drift_l2)
        objective = loss if drift is None else loss + drift / len(parts)
        le.scaler.scale(objective).backward()
        total = total + loss.detach().float()
    # one reduction for the loss and the stop request: all ranks agree on both
    shared = le.ranks.mean(torch.stack([total, torch.tensor(float(stop_flag), device=device)]))
    loss_value, stop_requested = shared.tolist()  # a CPU-GPU sync point
    grad_norm, problem = math.nan, None
    if not math.isfinite(loss_value):
        problem = f"loss is {loss_value}"
    else:
        grad_norm = clip_gradients(le.model, le.scaler, le.optimizer, options.grad_clip_norm)
        if not math.isfinite(grad_norm):
            problem = f"gradient norm is {grad_norm}"
    if problem is None:
        le.scaler.step(le.optimizer)
        le.scaler.update()
        if le.ema is not None:
            le.ema.update_parameters(le.model)
    elif le.scaler.is_enabled():
        le.scaler.update(le.scaler.get_scale() / 2)
    return StepResult(loss_value, grad_norm, problem, stop_requested > 0)
