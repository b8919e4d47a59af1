"""The parsers of the training commands: config, train, lr-find and sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from brain2text import commands
from brain2text.cli.parsing import IntermixedParser


def add_training_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``config``, ``train`` and ``lr-find`` to ``sub``."""
    p = sub.add_parser("config", help="print a run's fully resolved config (--list: packaged runs)")
    p.add_argument(
        "run_file",
        type=Path,
        nargs="?",
        help="a run file, or the name of a packaged one (run13_onecycle_safe)",
    )
    p.add_argument("--list", action="store_true", help="list the run files shipped with brain2text")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.n_batch=50")
    p.set_defaults(func=commands.cmd_config)

    p = sub.add_parser("train", help="train a run, or resume one (--resume RUN_DIR)")
    p.add_argument("run_file", type=Path, nargs="?", help="run file (not with --resume)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.n_batch=50")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue a killed or interrupted run from its checkpoints/last.pt",
    )
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<name>)")
    p.add_argument(
        "--auto-resume",
        action="store_true",
        help="continue the run folder's run from its last.pt when it has one, else "
        "start it (one command for Slurm requeues and torchrun restarts)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train with DistributedDataParallel in N processes on this machine "
        "(runs the command under torchrun; one per GPU, or CPU with gloo)",
    )
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("lr-find", help="LR range test: suggest optim.max_lr for OneCycle")
    p.add_argument("run_file", type=Path)
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.batch_size=32")
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default runs/<name>-lrfind)"
    )
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=1.0)
    p.add_argument(
        "--batches", type=int, default=200, help="batches of the sweep from start to end"
    )
    p.set_defaults(func=commands.cmd_lr_find)


def add_sweep_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``sweep`` to ``sub``."""
    p = sub.add_parser(
        "sweep", help="train a family of child runs of a run file: a grid, or an Optuna search"
    )
    p.add_argument("run_file", type=Path)
    p.add_argument("overrides", nargs="*", help="dotted overrides for every child, as in train")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a dotted key and its values; repeat for a product of several keys",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="grid: N seeds per grid point (train.seed, train.seed + 1, ...)",
    )
    p.add_argument(
        "--optuna",
        type=int,
        default=None,
        metavar="N",
        help="an Optuna (TPE) search of N trials over --space",
    )
    p.add_argument(
        "--space",
        type=Path,
        default=None,
        metavar="SPACE.yaml",
        help="the search space: dotted keys, each {low, high[, log, step]} or {choices: [...]}",
    )
    p.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="Optuna RDB storage URL (default: sqlite:///OUT/study.db); workers "
        "given the same URL join one study",
    )
    p.add_argument("--study", default=None, help="the study's name (default: the run's name)")
    p.add_argument(
        "--sampler-seed",
        type=int,
        default=None,
        metavar="S",
        help="seed of the TPE sampler (default: fresh; with --workers K, worker k gets S + k)",
    )
    p.add_argument(
        "--prune-startup",
        type=int,
        default=3,
        metavar="N",
        help="trials finished before the median pruner prunes (0: no pruning)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="K",
        help="K processes at a time on this machine, the cores shared between them",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="sweep folder (default runs/<name>-sweep, or runs/<name>-optuna)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=commands.cmd_sweep)
