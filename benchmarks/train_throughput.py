"""Training throughput of brain2text's data path against a naive mimic of the reference loop.

    python benchmarks/train_throughput.py configs/runs/run13_cpu_demo.yaml --batches 40 --warmup 5
    python benchmarks/train_throughput.py configs/runs/run13_onecycle_safe.yaml \
        --batches 3 --warmup 1
    # on a GPU: the naive mode in fp32 against bucketed, bf16, compiled training
    python benchmarks/train_throughput.py configs/runs/run13_onecycle_safe.yaml --batches 50 \
        --warmup 10 --fast train.length_bucket_pool=16 train.use_amp=true train.compile=true

Both modes train the same model (same seed, batch size, augmentation, CTC loss, clipping, Adam
and schedule step: training's own ``train_step``, subnormal floats flushed as the run file's
``train.flush_denormals`` says); only the way batches are made differs:

- fast: the project's path: memory-mapped float32 features, ``TrainBatches`` with the run's
  length bucketing (``train.length_bucket_pool``), one persistent DataLoader iterator for the run.
- naive: the reference's path: every training trial in RAM as float64, a Dataset converting one
  trial to float32 per item, ``DataLoader(shuffle=True)`` with a pad-to-longest collate, and
  ``next(iter(loader))`` rebuilt for every batch.

Each mode runs in its own process (its own peak RSS). Printed: the machine, the command and a
table of samples/s (timed batches after the warm-up: trials / wall time), s/batch and the part
of it spent making the batch, padded bins per batch (B x longest trial) and the share of them
that is padding, peak RSS, and the time the naive mode spends reading the data into RAM (not
counted in samples/s). Without ``--data`` a demo-sized synthetic data set is built once in
``benchmarks_workspace/``.

``benchmarks/train_long_run.py`` (the second line of ``make bench-train``) times a long run
instead: whether s/batch stays the same from its first quarter to its last.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader

from _common import (
    add_common_arguments,
    benchmark_main,
    children_peak_rss_mb,
    command_line,
    describe_fast_overrides,
    load_config,
    load_reference_trials,
    machine_line,
    markdown_table,
    pad_to_longest,
    peak_rss_mb,
    set_up_mode,
    thread_count,
)
from brain2text.config import RunConfig
from brain2text.data.batches import Batch
from brain2text.distributed import pick_device
from brain2text.model.factory import new_model
from brain2text.model.gru import count_parameters, describe_size
from brain2text.model.precision import denormals_flushed
from brain2text.training.optim import build_optimizer, build_scheduler
from brain2text.training.rundata import RunData, train_loader
from brain2text.training.step import (
    Learner,
    StepOptions,
    build_scaler,
    seed_everything,
    train_step,
)

MODES = ["naive", "fast"]


def timed_steps(
    next_batch: Callable[[], Batch],
    config: RunConfig,
    data: RunData,
    device: torch.device,
    generator: torch.Generator,
    warmup: int,
    batches: int,
) -> dict:
    """Train ``warmup + batches`` steps on batches from ``next_batch``; time the last ones."""
    model = new_model(config, data.dataset.n_days, data.dataset.n_features).to(device)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, config.train.n_batch)
    learner = Learner(
        model, model, optimizer, build_scaler(config, device), StepOptions.of_run(config), generator
    )
    samples = padded = real = 0
    data_s = 0.0  # time spent making batches (the rest is model, loss and optimizer)
    losses = []
    start = time.perf_counter()
    for step in range(warmup + batches):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            samples = padded = real = 0
            data_s = 0.0
        fetched = time.perf_counter()
        batch = next_batch().to(device)
        data_s += time.perf_counter() - fetched
        model.train()
        result = train_step(learner, batch)  # its loss is read: a sync point on a GPU
        scheduler.step()
        losses.append(result.loss)
        b, t = batch.features.shape[:2]
        samples, padded, real = samples + b, padded + b * t, real + int(batch.n_bins.sum())
        print(
            f"  step {step}{' (warm-up)' if step < warmup else ''}: {b} x {t} bins, "
            f"loss {losses[-1]:.3f}",
            file=sys.stderr,
            flush=True,
        )
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {
        "samples": samples,
        "wall_s": wall,
        "batches": batches,
        "data_s": data_s,
        "padded_bins_per_batch": padded / batches,
        "padding_share": 1 - real / padded,
        "parameters": count_parameters(model),
        "first_loss": losses[0],
    }


def fast(config: RunConfig, data: RunData, device: torch.device, warmup: int, batches: int) -> dict:
    """The project's path: the training loop's own loader."""
    tc = config.train
    generator = seed_everything(tc.seed, device=device)
    loader = train_loader(data, config, device, stop=warmup + batches)
    stream = iter(loader)
    result = timed_steps(stream.__next__, config, data, device, generator, warmup, batches)
    del stream, loader  # ends the workers, so that their peak RSS is counted below
    return {**result, "load_s": 0.0, "workers": tc.num_workers}


def naive(
    config: RunConfig, data: RunData, device: torch.device, warmup: int, batches: int
) -> dict:
    """The reference's path: float64 trials in RAM, shuffled DataLoader padding to the batch's
    longest trial, a new iterator (and so a new permutation) for every batch."""
    tc = config.train
    generator = seed_everything(tc.seed, device=device)
    trials, load_s = load_reference_trials(data.dataset.path, data.train_split, data.train_idx)
    loader = DataLoader(
        trials,
        batch_size=tc.batch_size,
        shuffle=True,
        num_workers=0,
        pin_memory=device.type == "cuda",
        collate_fn=pad_to_longest,
    )
    result = timed_steps(
        lambda: next(iter(loader)), config, data, device, generator, warmup, batches
    )
    return {**result, "load_s": load_s, "workers": 0}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per mode")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches before them")
    return parser


def measure(mode: str, args: argparse.Namespace) -> dict:
    """One mode, in this process: its figures and this process's peak RSS."""
    config, device, data = set_up_mode(args, mode)
    run = {"naive": naive, "fast": fast}[mode]
    with denormals_flushed(config.train.flush_denormals):
        result = run(config, data, device, args.warmup, args.batches)
    return {**result, "peak_rss_mb": peak_rss_mb(), "workers_peak_rss_mb": children_peak_rss_mb()}


def print_report(args: argparse.Namespace, results: dict[str, dict]) -> None:
    config = load_config(args, "fast")
    tc = config.train
    print(f"machine: {machine_line(thread_count(args, config), pick_device(tc.device))}")
    print(f"command: {command_line()}")
    if args.fast:
        print(describe_fast_overrides(args))
    print(
        f"run: {config.name}, {describe_size(results['fast']['parameters'])} parameters, "
        f"batch {tc.batch_size}, length_bucket_pool {tc.length_bucket_pool}, "
        f"num_workers {tc.num_workers} (fast mode); data {args.data}; "
        f"{args.warmup} warm-up + {args.batches} timed batches per mode"
    )
    print()
    rows = []
    for mode in MODES:
        r = results[mode]
        rss = f"{r['peak_rss_mb']:.0f}"
        if r["workers"]:
            rss += f" (+{r['workers']} workers, {r['workers_peak_rss_mb']:.0f} each at most)"
        rows.append(
            [
                mode,
                f"{r['samples'] / r['wall_s']:.2f}",
                f"{r['wall_s'] / r['batches']:.3f}",
                f"{r['data_s'] / r['batches']:.3f}",
                f"{r['padded_bins_per_batch']:.0f}",
                f"{100 * r['padding_share']:.0f}%",
                rss,
                f"{r['load_s']:.1f}",
            ]
        )
    print(
        markdown_table(
            [
                "mode",
                "samples/s",
                "s/batch",
                "of which data",
                "padded bins/batch",
                "padding",
                "peak RSS (MB)",
                "data to RAM (s)",
            ],
            rows,
        )
    )
    speed = {m: results[m]["samples"] / results[m]["wall_s"] for m in MODES}
    print(f"\nfast / naive samples/s: {speed['fast'] / speed['naive']:.2f}x")


if __name__ == "__main__":
    benchmark_main(build_parser, measure, print_report, MODES)
