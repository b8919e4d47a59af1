"""Time training steps of a run's model on random data of realistic shape.

    python benchmarks/train_step.py configs/runs/run13_onecycle_safe.yaml --batch 64 --steps 2

Prints the machine, the command and, per step, forward+backward+optimizer time, samples/s and
peak resident memory. The first step is reported apart (allocation and warm-up).
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time

import torch

from brain2text.config import load_run
from brain2text.model.ctc import ctc_losses
from brain2text.model.factory import new_model
from brain2text.model.gru import count_parameters, describe_size
from brain2text.training.augment import augment_batch
from brain2text.training.optim import build_optimizer, build_scheduler

TYPICAL_BINS = 300  # mean trial length of the real data (FACTS §1)
TYPICAL_PHONEMES = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_file")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--bins", type=int, default=TYPICAL_BINS, help="padded trial length")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_run(args.run_file, args.overrides)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = new_model(config, n_days=24, n_features=256).to(device)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, config.train.n_batch)
    b = args.batch
    x = torch.randn(b, args.bins, 256)
    n_bins = torch.full((b,), args.bins)
    targets = torch.randint(1, 41, (b, TYPICAL_PHONEMES), device=device)
    target_lengths = torch.full((b,), TYPICAL_PHONEMES, device=device)
    days = torch.randint(0, 24, (b,), device=device)

    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, {device}, torch {torch.__version__}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"model: {describe_size(count_parameters(model))} parameters; batch {b} x {args.bins} bins"
    )
    print(f"{'step':>4}  {'seconds':>8}  {'samples/s':>9}  {'peak RSS (MB)':>13}")
    for step in range(args.steps):
        start = time.perf_counter()
        features, token_mask = augment_batch(x.to(device), n_bins.to(device), config.augment)
        logits = model(features, days, time_mask=token_mask)
        loss = ctc_losses(
            logits, model.output_lengths(n_bins.to(device)), targets, target_lengths
        ).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            model.parameters(), config.optim.grad_clip_norm or float("inf")
        )
        optimizer.step()
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        label = f"{step}{' (warm-up)' if step == 0 else ''}"
        print(f"{label:>4}  {dt:8.2f}  {b / dt:9.2f}  {rss:13.0f}")


if __name__ == "__main__":
    main()
