"""Evaluation throughput (sentences/s) of brain2text's eval pass against a naive mimic of the
reference's.

    python benchmarks/eval_throughput.py configs/runs/run13_cpu_demo.yaml --passes 3 --warmup 1
    python benchmarks/eval_throughput.py configs/runs/run13_cpu_demo.yaml \
        --checkpoint RUN/checkpoints/best.pt

One pass decodes the run's evaluation split (the validation blocks by default;
``data.eval_split=test`` for the test split; ``--limit N`` keeps its first N trials) with the
same weights (``--checkpoint``, else the run's model at its seeded random initialisation):

- fast: the project's pass, ``decode_split`` (length-sorted batches of ``train.eval_batch_size``,
  memory-mapped float32 data, vectorised greedy decoding, per-trial CTC loss) and ``score``
  (rapidfuzz edit distances, PER overall and per day).
- naive: the reference's pass: trials in RAM as float64, a DataLoader of 64 trials in file order
  padded to each batch's longest trial, forward and mean CTC loss per batch, then per trial a
  Python loop: argmax over its valid frames, ``torch.unique_consecutive``, blanks dropped in a
  list comprehension, and its edit distance (the table gives the time of that loop). The
  reference computes that distance with the ``edit_distance`` package, written in pure Python;
  here it is rapidfuzz's (C), as in the fast mode, so the naive mode is if anything faster than
  the reference.

Both modes use the model's true output lengths (the reference's are one frame short). The
bidirectional GRU is not length-masked, so the padding a trial gets (least in length-sorted
batches) changes its outputs slightly: the two PERs may differ a little, and the table says by
how much and in how many sentences. Each mode runs in its own process (its own peak RSS).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from _common import (
    add_common_arguments,
    benchmark_main,
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
from brain2text.distributed import pick_device
from brain2text.evaluation.metrics import edit_distance
from brain2text.evaluation.scoring import decode_split, references, score
from brain2text.model.ctc import ctc_losses
from brain2text.model.gru import GRUDecoder, count_parameters, describe_size
from brain2text.model.loading import load_model
from brain2text.training.rundata import RunData
from brain2text.training.step import seed_everything

MODES = ["naive", "fast"]
REFERENCE_BATCH_SIZE = 64  # the reference's test loader uses the training batch size, 64


def fast_pass(model: GRUDecoder, data: RunData, idx: np.ndarray, config, device) -> dict:
    tc = config.train
    decoded = decode_split(
        model, data.eval_split, idx, device, tc.eval_batch_size, tc.use_amp, tc.amp_dtype
    )
    summary = score(
        references(data.eval_split, idx), decoded, data.eval_split.day_index[idx], data.dataset.days
    )
    hyps = {int(i): h.tolist() for i, h in zip(decoded.trial_ids, decoded.hypotheses, strict=False)}
    return {
        "per": summary.per,
        "loss": summary.loss,
        "edits": summary.edit_distance,
        "hypotheses": hyps,
    }


@torch.no_grad()
def naive_pass(model: GRUDecoder, loader: DataLoader, device) -> dict:
    model.eval()
    edits = n_phonemes = 0
    loop_s = 0.0  # time in the per-trial Python loop (decoding and edit distance)
    losses, hyps = [], {}
    for batch in loader:
        batch = batch.to(device)
        logits = model(batch.features, batch.day_index)  # (B, T', 41)
        out_lengths = model.output_lengths(batch.n_bins)
        loss = ctc_losses(logits, out_lengths, batch.phonemes, batch.n_phones).mean()
        losses.append(loss.cpu().numpy())
        loop_start = time.perf_counter()
        for k in range(logits.shape[0]):
            frames = torch.argmax(logits[k, : out_lengths[k]].clone(), dim=-1)
            frames = torch.unique_consecutive(frames, dim=-1).cpu().numpy()
            hyp = np.array([c for c in frames if c != 0])
            ref = batch.phonemes[k][: batch.n_phones[k]].cpu().numpy()
            edits += edit_distance(ref.tolist(), hyp.tolist())
            n_phonemes += len(ref)
            hyps[int(batch.trial_ids[k])] = hyp.tolist()
        loop_s += time.perf_counter() - loop_start
    # the reference averages the per-batch mean losses; the fast mode the per-trial ones
    return {
        "per": edits / n_phonemes,
        "loss": float(np.mean(losses)),
        "edits": edits,
        "hypotheses": hyps,
        "loop_s": loop_s,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="weights to evaluate (default: the run's model at its seeded random initialisation)",
    )
    parser.add_argument("--passes", type=int, default=3, help="timed passes per mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes before them")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N trials")
    return parser


def measure(mode: str, args: argparse.Namespace) -> dict:
    """One mode, in this process: its figures and this process's peak RSS."""
    config, device, data = set_up_mode(args, mode)
    idx = data.eval_idx[: args.limit] if args.limit else data.eval_idx
    if args.checkpoint:
        model = load_model(Path(args.checkpoint), device).model
    else:
        seed_everything(config.train.seed)
        model = GRUDecoder(
            config.model, n_days=data.dataset.n_days, n_features=data.dataset.n_features
        ).to(device)
    load_s = 0.0
    if mode == "naive":
        trials, load_s = load_reference_trials(data.dataset.path, data.eval_split, idx)
        loader = DataLoader(
            trials,
            batch_size=REFERENCE_BATCH_SIZE,
            shuffle=False,
            num_workers=0,
            pin_memory=device.type == "cuda",
            collate_fn=pad_to_longest,
        )
        one_pass = lambda: naive_pass(model, loader, device)  # noqa: E731
    else:
        one_pass = lambda: fast_pass(model, data, idx, config, device)  # noqa: E731
    for _ in range(args.warmup):
        one_pass()
    start = time.perf_counter()
    for _ in range(args.passes):
        result = one_pass()
    wall = time.perf_counter() - start
    return {
        **result,
        "sentences": len(idx),
        "passes": args.passes,
        "wall_s": wall,
        "load_s": load_s,
        "parameters": count_parameters(model),
        "split": data.eval_name,
        "peak_rss_mb": peak_rss_mb(),
    }


def print_report(args: argparse.Namespace, results: dict[str, dict]) -> None:
    config = load_config(args, "fast")
    fast, naive = results["fast"], results["naive"]
    print(f"machine: {machine_line(thread_count(args, config), pick_device(config.train.device))}")
    print(f"command: {command_line()}")
    if args.fast:
        print(describe_fast_overrides(args))
    print(
        f"run: {config.name}, {describe_size(fast['parameters'])} parameters, weights "
        f"{args.checkpoint or 'random (seeded)'}; {fast['sentences']} {fast['split']} "
        f"sentences; data {args.data}; {args.warmup} warm-up + {args.passes} timed passes "
        f"per mode; eval batch {config.train.eval_batch_size} (fast), "
        f"{REFERENCE_BATCH_SIZE} (naive)"
    )
    print()
    rows = []
    for mode in MODES:
        r = results[mode]
        loop = f"{r['loop_s']:.3f}" if "loop_s" in r else "-"  # the last pass's
        rows.append(
            [
                mode,
                f"{r['sentences'] * r['passes'] / r['wall_s']:.1f}",
                f"{r['wall_s'] / r['passes']:.3f}",
                loop,
                f"{r['per']:.4f}",
                r["edits"],
                f"{r['loss']:.4f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['load_s']:.1f}",
            ]
        )
    print(
        markdown_table(
            [
                "mode",
                "sentences/s",
                "s/pass",
                "of which Python loop",
                "PER",
                "edits",
                "CTC loss",
                "peak RSS (MB)",
                "data to RAM (s)",
            ],
            rows,
        )
    )
    ratio = naive["wall_s"] / naive["passes"] / (fast["wall_s"] / fast["passes"])
    differ = sum(naive["hypotheses"][i] != h for i, h in fast["hypotheses"].items())
    print(f"\nfast / naive sentences/s: {ratio:.2f}x")
    print(
        f"PER fast - naive: {fast['per'] - naive['per']:+.4f}; hypotheses differ in {differ} "
        f"of {fast['sentences']} sentences (padding: the GRU is not length-masked)"
    )


if __name__ == "__main__":
    benchmark_main(build_parser, measure, print_report, MODES)
