"""Data path at full size: synthesis, prepare throughput, reading and training peak memory.

    make bench-data      # = OMP_NUM_THREADS=2 .venv/bin/python benchmarks/data_path.py

Synthesises a set shaped like the real release (24 days, 370 training, 37 test sentences a day,
80 hold-out sentences on the 15 hold-out days; compact files) into ``--work`` unless a complete
one with the same arguments is already there, then measures, each step in its own process:

* ``prepare``: wall time, MB/s of ``.mat`` read (their total size / wall) and peak RSS;
* a read pass: every training trial collated once, in batches, as training reads them;
* training ``run13_cpu_demo`` for ``--train-batches`` batches ending in one evaluation of the
  validation split: samples/s of the training steps and peak RSS;
* optionally (``--double-days``) ``prepare`` of a small set of double-precision files, the class
  the real files store;
* a Brain-to-Text '25-sized set (``--b2t25-sessions``, default the release's 45 sessions, about
  10.9k trials of 512 features): synthesis, ``prepare`` (MB/s of ``.hdf5`` read, peak RSS) and
  training ``b2t25_cpu_demo`` (samples/s, peak RSS).

Peak RSS is the child's own ``ru_maxrss`` (``os.wait4`` reports it per child). Prints the
machine, the command and a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from brain2text.data.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
DEMO_RUN = REPO / "configs" / "runs" / "run13_cpu_demo.yaml"
B2T25_RUN = REPO / "configs" / "runs" / "b2t25_cpu_demo.yaml"
SYNTH_MANIFEST = "synth_manifest.json"
TIMING_FILE = "synth_timing.json"  # how long the set took to make, kept for reruns that reuse it
MB = 1e6


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_mb: float
    output: str


def measure(command: list[str]) -> Measured:
    """Run ``command`` as a child process; its wall time and its own peak resident memory."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env()
    )
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)  # rusage of this child (and what it waited for)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"failed ({child.returncode}): {' '.join(command)}\n{output[-3000:]}")
    return Measured(wall, usage.ru_maxrss * 1024 / MB, output)  # ru_maxrss is in KiB on Linux


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def brain2text(*args: str) -> list[str]:
    return [sys.executable, "-m", "brain2text", *args]


def ensure_synth(
    raw: Path, days: int, train: int, test: int, holdout: int, compact: bool, seed: int
) -> tuple[dict, bool]:
    """Make the synthetic set unless a complete one with these arguments exists; its timing."""
    wanted = {
        "train_per_day": train,
        "test_per_day": test,
        "holdout_per_day": holdout,
        "compact": compact,
        "seed": seed,
    }
    manifest = _read_json(raw / SYNTH_MANIFEST)
    timing = _read_json(raw / TIMING_FILE)
    if (
        manifest.get("complete")
        and timing
        and len(manifest.get("days", [])) == days
        and all(manifest.get(k) == v for k, v in wanted.items())
    ):
        return timing, True
    command = brain2text(
        "synth",
        str(raw),
        "--days",
        str(days),
        "--train-per-day",
        str(train),
        "--test-per-day",
        str(test),
        "--holdout-per-day",
        str(holdout),
        "--seed",
        str(seed),
        "--overwrite",
        "--quiet",
        *(["--compact"] if compact else []),
    )
    run = measure(command)
    timing = {
        "wall_s": run.wall_s,
        "peak_rss_mb": run.peak_rss_mb,
        "date": dt.date.today().isoformat(),
        "mat_mb": mat_bytes(raw) / MB,
        "n_files": len(list(raw.rglob("*.mat"))),
    }
    (raw / TIMING_FILE).write_text(json.dumps(timing, indent=1) + "\n")
    return timing, False


def synth_row(label: str, timing: dict, reused: bool) -> tuple[str, str, str, str, str]:
    made = f", made {timing['date']}, reused" if reused else ""
    return (
        f"{label} ({timing['n_files']} files{made})",
        f"{timing['wall_s']:.0f}",
        f"{timing['mat_mb']:.0f} written",
        f"{timing['mat_mb'] / timing['wall_s']:.1f}",
        f"{timing['peak_rss_mb']:.0f}",
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mat_bytes(raw: Path, pattern: str = "*.mat") -> int:
    return sum(p.stat().st_size for p in raw.rglob(pattern))


def ensure_b2t25(
    raw: Path, sessions: int, train: int, val: int, test: int, seed: int
) -> tuple[dict, bool]:
    """Make the B2T'25-layout set unless one with these arguments exists; its timing."""
    wanted = {"sessions": sessions, "train": train, "val": val, "test": test, "seed": seed}
    timing = _read_json(raw / TIMING_FILE)
    if timing and timing.get("arguments") == wanted:
        return timing, True
    run = measure(
        brain2text(
            "synth",
            str(raw),
            "--layout",
            "b2t25",
            "--days",
            str(sessions),
            "--train-per-day",
            str(train),
            "--test-per-day",
            str(val),
            "--holdout-per-day",
            str(test),
            "--seed",
            str(seed),
            "--overwrite",
            "--quiet",
        )
    )
    timing = {
        "wall_s": run.wall_s,
        "peak_rss_mb": run.peak_rss_mb,
        "arguments": wanted,
        "date": dt.date.today().isoformat(),
        "mat_mb": mat_bytes(raw, "*.hdf5") / MB,
        "n_files": len(list(raw.rglob("*.hdf5"))),
    }
    (raw / TIMING_FILE).write_text(json.dumps(timing, indent=1) + "\n")
    return timing, False


def train_row(
    label: str, run_file: Path, prepared: Path, work: Path, n: int, threads: int
) -> tuple[str, str, str, str, str]:
    run_dir = work / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run = measure(
        brain2text(
            "train",
            str(run_file),
            f"data.path={prepared}",
            f"train.n_batch={n}",
            f"train.eval_every={n}",
            f"train.threads={threads}",
            "--out",
            str(run_dir),
            "--quiet",
        )
    )
    figures = train_figures(run_dir)
    return (
        f"train {label}: {n} batches of 32 + {figures['n_evals']} evaluation(s) of the "
        f"validation split, {figures['samples_per_s']:.1f} samples/s (median step)",
        f"{run.wall_s:.0f}",
        "",
        "",
        f"{run.peak_rss_mb:.0f}",
    )


def read_pass(prepared: Path, batch_size: int) -> None:
    """Collate every training trial once, in file order: what an epoch of training reads."""
    import numpy as np

    from brain2text.data.batches import collate
    from brain2text.data.dataset import open_prepared

    split = open_prepared(prepared).split("train")
    start = time.perf_counter()
    n_bytes = 0
    for first in range(0, len(split), batch_size):
        batch = collate(split, np.arange(first, min(first + batch_size, len(split))))
        n_bytes += int(batch.n_bins.sum()) * batch.features.shape[2] * 4
    wall = time.perf_counter() - start
    print(json.dumps({"trials": len(split), "feature_mb": n_bytes / MB, "wall_s": wall}))


def train_figures(run_dir: Path) -> dict:
    """Median samples/s of the training steps (the first, warm-up, left out) and eval count."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["samples_per_s"] for r in rows if "samples_per_s" in r][1:]
    evals = [r for r in rows if any(k.endswith("/per") for k in r)]
    return {
        "samples_per_s": statistics.median(speeds) if speeds else float("nan"),
        "n_evals": len(evals),
    }


def machine() -> str:
    import numpy
    import torch

    from brain2text.runs.provenance import cpu_name

    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM, "
        f"Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"torch {torch.__version__}, OMP_NUM_THREADS={child_env()['OMP_NUM_THREADS']}"
    )


def full_size_2023(
    args: argparse.Namespace, work: Path, rows: list[tuple[str, str, str, str, str]]
) -> float:
    """The competitionData rows; returns the prepared features' size on disk (MB)."""
    raw = work / "raw"
    timing, reused = ensure_synth(
        raw,
        args.days,
        args.train_per_day,
        args.test_per_day,
        args.holdout_per_day,
        compact=True,
        seed=args.seed,
    )
    rows.append(synth_row(f"synth {args.days} days, compact", timing, reused))

    prepared = work / "prepared"
    run = measure(brain2text("prepare", str(raw), str(prepared), "--overwrite", "--quiet"))
    size = mat_bytes(raw) / MB
    rows.append(
        (
            "prepare (compact .mat)",
            f"{run.wall_s:.1f}",
            f"{size:.0f} read",
            f"{size / run.wall_s:.1f}",
            f"{run.peak_rss_mb:.0f}",
        )
    )
    features_mb = sum(p.stat().st_size for p in prepared.rglob("features.npy")) / MB

    run = measure([sys.executable, __file__, "--read-pass", str(prepared)])
    read = json.loads(run.output.strip().splitlines()[-1])
    rows.append(
        (
            f"read pass: collate all {read['trials']} training trials",
            f"{read['wall_s']:.1f}",
            f"{read['feature_mb']:.0f} float32",
            f"{read['feature_mb'] / read['wall_s']:.0f}",
            f"{run.peak_rss_mb:.0f}",
        )
    )

    rows.append(
        train_row("run13_cpu_demo", DEMO_RUN, prepared, work, args.train_batches, args.threads)
    )

    if args.double_days:
        raw_d = work / f"raw_double_{args.double_days}d"
        timing_d, reused_d = ensure_synth(
            raw_d,
            args.double_days,
            args.train_per_day,
            args.test_per_day,
            args.holdout_per_day,
            compact=False,
            seed=args.seed,
        )
        rows.append(synth_row(f"synth {args.double_days} day(s), double", timing_d, reused_d))
        run = measure(
            brain2text(
                "prepare", str(raw_d), str(work / "prepared_double"), "--overwrite", "--quiet"
            )
        )
        size = mat_bytes(raw_d) / MB
        rows.append(
            (
                f"prepare ({args.double_days} day(s) of double .mat)",
                f"{run.wall_s:.1f}",
                f"{size:.0f} read",
                f"{size / run.wall_s:.1f}",
                f"{run.peak_rss_mb:.0f}",
            )
        )
    return features_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks_workspace" / "full_size")
    parser.add_argument("--days", type=int, default=24)
    parser.add_argument("--train-per-day", type=int, default=370)
    parser.add_argument("--test-per-day", type=int, default=37)
    parser.add_argument("--holdout-per-day", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-batches", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument(
        "--double-days",
        type=int,
        default=2,
        help="days of a double-precision set to prepare as well (0: none)",
    )
    parser.add_argument(
        "--b2t25-sessions", type=int, default=45, help="sessions of the B2T'25-layout set (0: none)"
    )
    parser.add_argument(
        "--b2t25-trials",
        type=int,
        nargs=3,
        default=[180, 35, 35],
        metavar=("TRAIN", "VAL", "TEST"),
        help="trials a session (train-only sessions have train trials only); "
        "the default gives about the release's 10,948",
    )
    parser.add_argument(
        "--b2t25-only",
        action="store_true",
        help="only the B2T'25-layout set (the 2023 rows measured before)",
    )
    parser.add_argument("--read-pass", type=Path, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.read_pass:
        read_pass(args.read_pass, batch_size=32)
        return

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"date: {dt.date.today().isoformat()}")
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    rows: list[tuple[str, str, str, str, str]] = []  # step, wall, MB, MB/s, peak RSS

    features_mb = 0.0
    if not args.b2t25_only:
        features_mb = full_size_2023(args, work, rows)
    if args.b2t25_sessions:
        raw_b = work / "raw_b2t25"
        timing_b, reused_b = ensure_b2t25(
            raw_b, args.b2t25_sessions, *args.b2t25_trials, seed=args.seed
        )
        rows.append(
            synth_row(f"synth B2T'25 layout, {args.b2t25_sessions} sessions", timing_b, reused_b)
        )
        prepared_b = work / "prepared_b2t25"
        run = measure(brain2text("prepare", str(raw_b), str(prepared_b), "--overwrite", "--quiet"))
        size = mat_bytes(raw_b, "*.hdf5") / MB
        n_trials = sum(s.n_trials for s in read_manifest(prepared_b).splits.values())
        rows.append(
            (
                f"prepare (B2T'25 .hdf5, {n_trials} trials x 512 features)",
                f"{run.wall_s:.1f}",
                f"{size:.0f} read",
                f"{size / run.wall_s:.1f}",
                f"{run.peak_rss_mb:.0f}",
            )
        )
        rows.append(
            train_row(
                "b2t25_cpu_demo", B2T25_RUN, prepared_b, work, args.train_batches, args.threads
            )
        )

    if features_mb:
        print(f"prepared features on disk: {features_mb:.0f} MB float32")
    print()
    print("| step | wall (s) | data (MB) | MB/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
