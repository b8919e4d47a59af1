"""What packing does to a bidirectional decoder's evaluation: PER and time of one pass over a
split with the batch padded (the model's backward direction reads each shorter trial's
padding first, as it did before packing), packed (each trial read as its own length: what
``evaluate`` does), and each trial alone (the reference for "independent of the batch").

    python benchmarks/packing.py RUN_DIR [--split test] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from _common import command_line, machine_line, markdown_table
from brain2text.data.batches import collate, eval_batches
from brain2text.decoding.greedy import greedy_decode
from brain2text.evaluation.evaluate import load_target
from brain2text.evaluation.metrics import error_rate


def one_pass(target, batches, packed: bool) -> tuple[dict[int, list[int]], float]:
    model, hyps = target.model, {}
    start = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            logits = model(batch.features, batch.day_index, batch.n_bins if packed else None)
            decoded = greedy_decode(logits, model.output_lengths(batch.n_bins))
            for i, h in zip(batch.trial_ids.tolist(), decoded, strict=True):
                hyps[i] = h.tolist()
    return hyps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = load_target(args.run_dir, args.split, device_name="cpu")
    split, indices = target.split, target.indices
    refs = {int(i): split.phonemes(int(i)).tolist() for i in indices}
    batched = list(eval_batches(split, indices, args.batch_size))
    alone = [collate(split, np.array([i])) for i in indices]
    rows, results = [], {}
    for name, batches, packed in (
        ("padded batches", batched, False),
        ("packed batches (evaluate)", batched, True),
        ("each trial alone", alone, False),
    ):
        one_pass(target, batches[:2], packed)  # warm-up
        hyps, seconds = one_pass(target, batches, packed)
        results[name] = hyps
        rate = error_rate([refs[i] for i in refs], [hyps[i] for i in refs])
        rows.append(
            [name, f"{rate.rate:.4f}", f"{seconds:.2f}", f"{1000 * seconds / len(refs):.1f}"]
        )
    same = sum(
        results["packed batches (evaluate)"][i] == results["each trial alone"][i] for i in refs
    )
    differ = sum(results["padded batches"][i] != results["each trial alone"][i] for i in refs)
    print(f"machine: {machine_line(args.threads, torch.device('cpu'))}")
    print(f"command: {command_line()}")
    print(
        f"run: {args.run_dir} ({target.config.name}, bidirectional="
        f"{target.config.model.bidirectional}), {args.split} split, {len(refs)} trials, "
        f"batches of {args.batch_size}"
    )
    print(markdown_table(["pass", "PER", "seconds", "ms / trial"], rows))
    print(
        f"packed = alone for {same} of {len(refs)} trials; padded differs from alone for {differ}"
    )


if __name__ == "__main__":
    main()
