"""What the throughput benchmarks share: the machine line, the data set, one subprocess per mode,
the markdown table, and the "naive" data path that mimics the public reference decoder.

Each mode of a benchmark runs in its own Python process (``--mode NAME``), so that its peak
resident memory (``ru_maxrss``) is its own; the process prints one ``RESULT {json}`` line on
stdout and the parent collects these lines into one table.

The naive data path follows the reference trainer (FACTS §3, neural_seq_decoder's
``SpeechDataset`` and ``getDatasetLoaders``): every trial's features held in RAM as float64
arrays (as in its pickle), phoneme ids as int32 arrays padded to 500, ``__getitem__`` converting
one trial to float32 tensors, and a collate function padding each batch to its longest trial.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from brain2text.config import RunConfig, load_run
from brain2text.data.batches import Batch
from brain2text.data.dataset import FEATURES_FILE, PreparedSplit
from brain2text.distributed import pick_device
from brain2text.runs.provenance import cpu_name
from brain2text.training.rundata import RunData, load_run_data

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = REPO / "benchmarks_workspace"  # gitignored: the default data set is built here
RESULT_PREFIX = "RESULT "
REFERENCE_PHONEME_PAD = 500  # the reference pickle pads every phoneme sequence to 500 ids


# --- the machine and the command


def machine_line(threads: int, device: torch.device) -> str:
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM, "
        f"torch {torch.__version__}, {threads} torch threads, {where}"
    )


def command_line() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """Largest peak resident memory among this process's finished children (loader workers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# --- arguments, config and data


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_file")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides of the run file")
    parser.add_argument(
        "--data",
        default=None,
        help=f"prepared data set (default: a demo-sized synthetic one, built "
        f"once in {WORKSPACE.name}/)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: train.threads, else all cores)",
    )
    parser.add_argument(
        "--fast",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="overrides for the fast mode only, e.g. on a GPU: "
        "train.use_amp=true train.compile=true (the naive mode stays fp32)",
    )
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # set for subprocesses


def default_data() -> Path:
    """The demo's data set (8 synthetic days, same seed), synthesised and prepared once into
    ``benchmarks_workspace/`` and reused afterwards (about 40 s the first time)."""
    from brain2text import demo
    from brain2text.data.dataset import MANIFEST_FILE
    from brain2text.data.prepare import prepare
    from brain2text.synth import generate

    raw, prepared = WORKSPACE / "raw", WORKSPACE / "prepared"
    if not (prepared / MANIFEST_FILE).is_file():
        print(f"building the benchmark data set in {WORKSPACE} (once)", file=sys.stderr)
        generate(
            raw,
            days=demo.DEMO_DAYS,
            train_per_day=demo.DEMO_TRAIN_PER_DAY,
            test_per_day=demo.DEMO_TEST_PER_DAY,
            holdout_per_day=demo.DEMO_HOLDOUT_PER_DAY,
            seed=demo.DEMO_SEED,
            overwrite=True,
            compact=True,
            progress=False,
        )
        prepare(raw, prepared, overwrite=True, progress=False)
    return prepared


def load_config(args: argparse.Namespace, mode: str | None = None) -> RunConfig:
    """The run file with its overrides (and ``--fast`` ones for the fast mode); ``args.data``
    (resolved by the parent) wins."""
    extra = args.fast if mode == "fast" else []
    return load_run(args.run_file, [*args.overrides, *extra, f"data.path={args.data}"])


def describe_fast_overrides(args: argparse.Namespace) -> str:
    return f"fast mode also: {' '.join(args.fast)}" if args.fast else ""


def set_up_mode(args: argparse.Namespace, mode: str) -> tuple[RunConfig, torch.device, RunData]:
    """What a mode's process measures with: the config, its threads and device, its data."""
    config = load_config(args, mode)
    torch.set_num_threads(thread_count(args, config))
    return config, pick_device(config.train.device), load_run_data(config)


def thread_count(args: argparse.Namespace, config: RunConfig) -> int:
    return args.threads or config.train.threads or os.cpu_count() or 1


# --- one subprocess per mode


def report(result: dict) -> None:
    """Called by a mode's process: its one result line for the parent."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_modes(modes: list[str], args: argparse.Namespace, threads: int) -> dict[str, dict]:
    """Run this script once per mode (``--mode M``, same arguments, ``--data`` resolved) and
    return each one's reported result. The child's stderr (progress) passes through; a failing
    child stops the benchmark."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    argv = [*sys.argv[1:], "--data", args.data, "--threads", str(threads)]
    results = {}
    for mode in modes:
        print(f"running mode {mode} ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, sys.argv[0], *argv, "--mode", mode],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if done.returncode != 0 or not lines:
            sys.exit(f"mode {mode} failed (exit code {done.returncode}):\n{done.stdout}")
        results[mode] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return results


def markdown_table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


# --- the naive data path (the reference's)


class ReferenceTrials(Dataset):
    """Trials held in RAM as the reference holds them: float64 features, int32 phoneme ids padded
    to 500; an item is (features float32, phonemes, n_bins, n_phones, day, trial id)."""

    def __init__(self, root: Path, split: PreparedSplit, indices: np.ndarray) -> None:
        self.features = read_float64(root, split, indices)
        self.phonemes = []
        for i in indices:
            padded = np.zeros(REFERENCE_PHONEME_PAD, dtype=np.int32)
            ids = split.phonemes(int(i))
            padded[: len(ids)] = ids
            self.phonemes.append(padded)
        self.n_bins = [f.shape[0] for f in self.features]
        self.n_phones = [int(split.n_phones[i]) for i in indices]
        self.days = [int(split.day_index[i]) for i in indices]
        self.ids = [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, k: int):
        return (
            torch.tensor(self.features[k], dtype=torch.float32),
            torch.tensor(self.phonemes[k], dtype=torch.int32),
            torch.tensor(self.n_bins[k], dtype=torch.int32),
            torch.tensor(self.n_phones[k], dtype=torch.int32),
            torch.tensor(self.days[k], dtype=torch.int64),
            torch.tensor(self.ids[k], dtype=torch.int64),
        )


def read_float64(root: Path, split: PreparedSplit, indices: np.ndarray) -> list[np.ndarray]:
    """(T, 256) float64 arrays of the trials ``indices``, read one session file at a time into RAM
    (no memory map, so the prepared files' pages do not count in this process's RSS: only the
    float64 copies and one session's float32 file, as when the reference unpickles its data).
    Trials of a session lie in its file one after the other, in split order."""
    start = np.zeros(len(split), dtype=np.int64)  # first bin of each trial in its session file
    end_of: dict[str, int] = {}
    for i in range(len(split)):
        session = split.session_of(i)
        start[i] = end_of.get(session, 0)
        end_of[session] = int(start[i] + split.n_bins[i])
    out: list[np.ndarray | None] = [None] * len(indices)
    by_session: dict[str, list[int]] = {}
    for k, i in enumerate(indices):
        by_session.setdefault(split.session_of(int(i)), []).append(k)
    for session, rows in by_session.items():
        features = np.load(root / split.name / session / FEATURES_FILE)  # (sum T, 256) float32
        for k in rows:
            i = int(indices[k])
            out[k] = features[start[i] : start[i] + split.n_bins[i]].astype(np.float64)
        del features
    return out


def load_reference_trials(
    root: Path, split: PreparedSplit, indices: np.ndarray
) -> tuple[ReferenceTrials, float]:
    """The trials read into RAM as float64 (the reference's pickle load), and the seconds it
    took."""
    start = time.perf_counter()
    trials = ReferenceTrials(root, split, indices)
    return trials, time.perf_counter() - start


def pad_to_longest(items) -> Batch:
    """Collate as the reference does: pad features and phonemes to the batch's longest, zeros.
    The result is the project's ``Batch``, so both modes share model, loss and step code."""
    features, phonemes, n_bins, n_phones, days, ids = zip(*items, strict=False)
    return Batch(
        pad_sequence(features, batch_first=True, padding_value=0),  # (B, T_max, 256)
        torch.stack(n_bins).long(),
        pad_sequence(phonemes, batch_first=True, padding_value=0).long(),  # (B, 500)
        torch.stack(n_phones).long(),
        torch.stack(days),
        torch.stack(ids),
    )


def benchmark_main(build_parser, measure, print_report, modes: list[str]) -> None:
    """A benchmark script's entry point: as a child (``--mode``), measure one mode and print
    its RESULT line; as the parent, run every mode in its own process and print the report."""
    args = build_parser().parse_args()
    if args.mode is not None:
        report(measure(args.mode, args))
        return
    args.data = str(args.data or default_data())
    results = run_modes(modes, args, thread_count(args, load_config(args)))
    print_report(args, results)
