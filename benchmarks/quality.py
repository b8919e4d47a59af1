"""Quality of the series' recipes at the CPU demo's size: test PER and wall time of the baseline,
the Run #13 child, a max_lr sweep of it (the engine: ``brain2text.sweep``), the warm-up + cosine
child, the run16_5 child, and 3 seeds of the best of them (chosen on validation PER) with their
ensemble. Each run is the recipe's run file with the demo's size (GRU 2 x 128, kernel 16,
batches of 32, ``--batches`` batches, buckets of 16); lengths that the full recipes give in
batches (warm-up) and EMA time constants are scaled to the same fraction of the run. Runs that
already finished in the workspace are reused, so the benchmark can be stopped and started again.

    python benchmarks/quality.py [--batches 400] [--workspace DIR]

Prints one markdown table (for BENCHMARKS.md), the spread of the identical-recipe seeds and
whether the targets hold: the best single recipe beats the baseline, and the ensemble beats
the best single run, each by more than that spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from _common import WORKSPACE, command_line, default_data, machine_line, markdown_table
from brain2text.config import load_run
from brain2text.evaluation.ensemble import evaluate_ensemble
from brain2text.evaluation.evaluate import evaluate_run
from brain2text.reports.listing import summarize_run
from brain2text.runs.folder import read_record
from brain2text.sweep.grid import run_sweep
from brain2text.training.loop import train

THREADS = 2
FULL_BATCHES = {"run13_warmcos": 10_000, "run16_5_ema_warmcos": 20_000}


def demo_size(data: Path, n_batch: int, extra: list[str]) -> list[str]:
    return [
        f"data.path={data}",
        "model.n_units=128",
        "model.n_layers=2",
        "model.kernel_len=16",
        "train.batch_size=32",
        f"train.n_batch={n_batch}",
        f"train.eval_every={max(1, n_batch // 4)}",
        f"train.threads={THREADS}",
        "train.length_bucket_pool=16",
        "train.num_workers=0",
        *extra,
    ]


def scaled(run_file: str, n_batch: int) -> list[str]:
    """The recipe's warm-up and EMA time constant at the same fraction of a shorter run."""
    config = load_run(run_file)
    full = FULL_BATCHES.get(run_file, config.train.n_batch)
    out = []
    if config.optim.warmup_batches:
        out.append(
            f"optim.warmup_batches={max(1, round(config.optim.warmup_batches * n_batch / full))}"
        )
    if config.train.ema_decay is not None:
        horizon = 1 / (1 - config.train.ema_decay) * n_batch / full
        out.append(f"train.ema_decay={1 - 1 / max(horizon, 2):.4f}")
    return out


def recipes(size: list[str], n_batch: int) -> dict[str, tuple[str, list[str]]]:
    return {
        "baseline_cpu": ("baseline_cpu", size),
        "run13_cpu_demo": ("run13_cpu_demo", size),
        # Run 13's max_lr 0.01 is 0.005 in the CPU child: the warm-up + cosine child keeps it
        "run13_warmcos": (
            "run13_warmcos",
            [*size, "optim.max_lr=0.005", *scaled("run13_warmcos", n_batch)],
        ),
        # bf16 autocast is a GPU setting: on this CPU it only slows the GRU down
        "run16_5_ema_warmcos": (
            "run16_5_ema_warmcos",
            [*size, "train.use_amp=false", *scaled("run16_5_ema_warmcos", n_batch)],
        ),
    }


def trained(run_file: str, overrides: list[str], folder: Path) -> Path:
    if (read_record(folder) or {}).get("status") != "finished":
        print(f"training {folder.name} ...", file=sys.stderr, flush=True)
        train(load_run(run_file, overrides), folder, overwrite=True, quiet=True)
    return folder


def test_per(run_dir: Path) -> float:
    return evaluate_run(run_dir, split_name="test").per


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=400, help="batches of every run")
    parser.add_argument(
        "--lrs",
        default="0.004,0.006,0.0075",
        help="the sweep's max_lr values beside the child's 0.005 (Run 13's "
        "0.008, 0.012, 0.015 at the child's scale)",
    )
    parser.add_argument("--workspace", type=Path, default=WORKSPACE / "quality")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="prepared data set (default: the demo's, built once)",
    )
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of every run after the demo's size (e.g. a smaller GRU)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    data = args.data or default_data()
    ws = args.workspace
    started = time.perf_counter()

    size = demo_size(data, args.batches, args.extra)
    runs: dict[str, tuple[Path, str, list[str]]] = {}
    for name, (run_file, overrides) in recipes(size, args.batches).items():
        runs[name] = (trained(run_file, overrides, ws / name), run_file, overrides)
    sweep = run_sweep(
        "run13_cpu_demo",
        {"optim.max_lr": [float(v) for v in args.lrs.split(",")]},
        overrides=size,
        out_dir=ws / "run13-lr-sweep",
        quiet=True,
    )
    for child in sorted(p for p in sweep.out_dir.iterdir() if (p / "run.json").is_file()):
        runs[f"run13_cpu_demo {child.name}"] = (
            child,
            "run13_cpu_demo",
            [*size, f"optim.{child.name}"],
        )

    summaries = {name: summarize_run(folder) for name, (folder, _, _) in runs.items()}
    candidates = [n for n in runs if n != "baseline_cpu"]
    best = min(candidates, key=lambda n: summaries[n].best_per)
    folder, run_file, overrides = runs[best]
    seeds = [folder] + [
        trained(run_file, [*overrides, f"train.seed={s}"], ws / f"best-seed{s}") for s in (1, 2)
    ]

    rows, tests = [], {}
    for name, (folder, _, _) in runs.items():
        tests[name] = test_per(folder)
        s = summaries[name]
        rows.append(
            [
                name + (" (best)" if name == best else ""),
                s.batches,
                f"{s.best_per:.4f}",
                f"{tests[name]:.4f}",
                f"{s.wall_s:.0f}",
            ]
        )
    seed_tests = [tests[best]] + [test_per(f) for f in seeds[1:]]
    for k, f in enumerate(seeds[1:], start=1):
        s = summarize_run(f)
        rows.append(
            [
                f"{best} seed {k}",
                s.batches,
                f"{s.best_per:.4f}",
                f"{seed_tests[k]:.4f}",
                f"{s.wall_s:.0f}",
            ]
        )
    train_s = sum(summarize_run(f).wall_s or 0.0 for f in seeds)
    t = time.perf_counter()
    ensemble = evaluate_ensemble(seeds, split_name="test", out=ws / "ensemble-test")
    rows.append(
        [
            f"ensemble of the 3 seeds of {best}",
            "-",
            "-",
            f"{ensemble.per:.4f}",
            f"{train_s:.0f} (+{time.perf_counter() - t:.0f} eval)",
        ]
    )

    spread = max(seed_tests) - min(seed_tests)
    sd = statistics.stdev(seed_tests)
    mean = statistics.mean(seed_tests)
    print(f"machine: {machine_line(THREADS, torch.device('cpu'))}")
    print(f"command: {command_line()}")
    print(markdown_table(["run", "batches", "best val PER", "test PER", "wall s"], rows))
    print(
        f"\nseeds of {best}: test PER {', '.join(f'{p:.4f}' for p in seed_tests)}; "
        f"mean {mean:.4f}, sd {sd:.4f}, spread (max - min) {spread:.4f}"
    )
    gain = tests["baseline_cpu"] - mean
    print(
        f"best recipe vs baseline: {gain:+.4f} test PER (seed mean against the baseline) -> "
        f"{'beats' if gain > spread else 'does not beat'} it by more than the spread"
    )
    gain = min(seed_tests) - ensemble.per
    print(
        f"ensemble vs best single seed: {gain:+.4f} test PER -> "
        f"{'beats' if gain > spread else 'does not beat'} it by more than the spread"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    result = {
        "rows": rows,
        "seed_tests": seed_tests,
        "ensemble": ensemble.per,
        "best": best,
        "baseline": tests["baseline_cpu"],
        "spread": spread,
    }
    (ws / "quality.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
