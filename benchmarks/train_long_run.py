"""Does CPU training keep its speed over a long run? s/batch of the first and the last quarter
of a run16_5 child at the size of the CPU benchmarks (GRU 2 x 128, batches of 16, fp32), with
subnormal floats flushed to zero (``train.flush_denormals``, the default) and, with
``--compare``, without.

    python benchmarks/train_long_run.py [--batches 400] [--threads 2] [--compare]

Each run is ``brain2text.training.loop.train`` of the run file (default run16_5_ema_warmcos)
with ``model.n_units=128 model.n_layers=2 train.batch_size=16 train.use_amp=false``, ``--batches``
batches, one evaluation at the end, and the recipe's warm-up and EMA time constant scaled to
the same fraction of the run (as ``benchmarks/quality.py`` scales them); overrides after the
run file change any of it. Every run trains in a process of its own: the CPU's float mode is a
per-thread setting that torch's thread pool takes at its start. The times are the run's own
``time_per_batch`` rows in metrics.jsonl (evaluation and checkpoint time left out). Printed: the
machine, the command, and a table of the mean s/batch of the first and of the last quarter of
the batches, their ratio (1.0: no slowdown), and the wall time. Without ``--data`` the demo's
synthetic data set is built once in ``benchmarks_workspace/``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from _common import (
    WORKSPACE,
    command_line,
    default_data,
    machine_line,
    markdown_table,
    report,
    run_modes,
)
from brain2text.config import RunConfig, load_run
from brain2text.runs import metric_keys as mk
from brain2text.runs.folder import read_record
from brain2text.runs.runlog import read_metrics
from brain2text.training.loop import train
from quality import scaled

MODES = {"flushed": "true", "not flushed": "false"}  # mode -> train.flush_denormals
SIZE = [
    "model.n_units=128",
    "model.n_layers=2",
    "train.batch_size=16",
    "train.use_amp=false",
    "train.num_workers=0",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_file", nargs="?", default="run16_5_ema_warmcos")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides of the run file")
    parser.add_argument("--batches", type=int, default=400, help="batches of every run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also train without flushing subnormals (slower: the slowdown it shows)",
    )
    parser.add_argument("--data", default=None, help="prepared data set (default: the demo's)")
    parser.add_argument("--workspace", type=Path, default=WORKSPACE / "long_run")
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # set for subprocesses
    return parser


def run_config(args: argparse.Namespace, mode: str) -> RunConfig:
    n = args.batches
    return load_run(
        args.run_file,
        [
            f"data.path={args.data}",
            *SIZE,
            f"train.n_batch={n}",
            f"train.eval_every={n}",
            f"train.threads={args.threads}",
            *scaled(args.run_file, n),
            *args.overrides,
            f"train.flush_denormals={MODES[mode]}",
        ],
    )


def measure(mode: str, args: argparse.Namespace) -> dict:
    """One run, in this process: its s/batch by quarter and what run.json says of its CPU."""
    out = Path(args.workspace) / f"flush-{MODES[mode]}"
    train(run_config(args, mode), out, overwrite=True, quiet=True)
    times = [r[mk.TIME_PER_BATCH] for r in read_metrics(out) if mk.TIME_PER_BATCH in r]
    quarter = max(len(times) // 4, 1)
    record = read_record(out) or {}
    return {
        "batches": len(times),
        "first_s": statistics.mean(times[:quarter]),
        "last_s": statistics.mean(times[-quarter:]),
        "wall_s": record.get("wall_s"),
        "cpu": record.get("cpu"),
    }


def print_report(args: argparse.Namespace, results: dict[str, dict]) -> None:
    config = run_config(args, next(iter(results)))
    print(f"machine: {machine_line(args.threads, torch.device('cpu'))}")
    print(f"command: {command_line()}")
    print(
        f"run: {config.name} child, GRU {config.model.n_layers} x {config.model.n_units}, "
        f"batches of {config.train.batch_size} ({config.train.grad_accum} micro-batches), "
        f"fp32, {args.batches} batches; data {args.data}"
    )
    print()
    rows = []
    for mode, r in results.items():
        flushed = (r["cpu"] or {}).get("denormals_flushed")
        rows.append(
            [
                mode,
                "yes" if flushed else "no",
                r["batches"],
                f"{r['first_s']:.3f}",
                f"{r['last_s']:.3f}",
                f"{r['last_s'] / r['first_s']:.2f}",
                f"{r['wall_s']:.0f}" if r["wall_s"] is not None else "-",
            ]
        )
    headers = [
        "subnormals",
        "flushed (run.json)",
        "batches",
        "s/batch first quarter",
        "s/batch last quarter",
        "last / first",
        "wall s",
    ]
    print(markdown_table(headers, rows))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.mode is not None:
        report(measure(args.mode, args))
        return
    args.data = str(args.data or default_data())
    modes = list(MODES) if args.compare else ["flushed"]
    print_report(args, run_modes(modes, args, args.threads))


if __name__ == "__main__":
    main()
