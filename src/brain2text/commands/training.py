"""The training commands: ``config``, ``train`` (one process or ``--nproc``), ``lr-find``,
``sweep``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brain2text.commands.run_report import refresh_report
from brain2text.errors import ConfigError
from brain2text.training.interrupt import EXIT_INTERRUPTED


def cmd_config(args: argparse.Namespace) -> None:
    from brain2text.config import load_run, packaged_run_files, to_yaml

    if args.list:
        for name, path in packaged_run_files().items():
            config = load_run(path, resolve_max_lr=False)
            about = " ".join(config.description.split())
            print(f"{name:24s} {about[:90] + ('...' if len(about) > 90 else '')}".rstrip())
        return
    if args.run_file is None:
        raise ConfigError(
            "config: give a RUN_FILE (a path or a packaged run name; --list shows "
            "the packaged runs)"
        )
    from brain2text.training.optim import summarize

    config = load_run(args.run_file, args.overrides)
    print(to_yaml(config), end="")
    optim, n_batch = config.optim, config.train.n_batch
    print(f"# derived ({optim.schedule} schedule over {n_batch} batches, as torch computes it):")
    if optim.max_lr_from:
        print(f"#   max_lr {optim.max_lr:.6g} is the suggestion of {optim.max_lr_from}")
    for line in summarize(optim, n_batch).lines():
        print(f"#   {line}")
    if optim.schedule == "onecycle":
        if optim.cycle_momentum:
            print("#   beta1 cycles 0.95 -> 0.85 -> 0.95 with the LR: optim.betas[0] is not used")
        else:
            print(f"#   momentum cycling off: Adam betas stay {tuple(optim.betas)}")


def cmd_train(args: argparse.Namespace) -> int:
    from brain2text import distributed
    from brain2text.config import load_run
    from brain2text.training.loop import INTERRUPTED, resume, train

    if args.nproc is not None:
        return _launch_torchrun(args)
    if args.resume is not None:
        given = [str(a) for a in (args.run_file, *args.overrides) if a is not None]
        if given or args.out or args.overwrite or args.auto_resume:
            raise ConfigError(
                f"--resume continues {args.resume} with the config stored in its "
                "last.pt: no run file, override, --out, --overwrite or "
                f"--auto-resume (got {' '.join(given) or 'a flag'})"
            )
        out = args.resume
        outcome = resume(out, quiet=args.quiet)
    else:
        if args.run_file is None:
            raise ConfigError("train: give a RUN_FILE, or --resume RUN_DIR")
        config = load_run(args.run_file, args.overrides)
        out = args.out or Path("runs") / config.name
        if args.auto_resume and (out / "checkpoints" / "last.pt").is_file():
            outcome = resume(out, quiet=args.quiet, expected=config)
        else:
            outcome = train(config, out, overwrite=args.overwrite, quiet=args.quiet)
    if not distributed.environment().is_main:
        return EXIT_INTERRUPTED if outcome.status == INTERRUPTED else 0
    refresh_report(out)
    if outcome.status == INTERRUPTED:
        print(
            f"interrupted by {outcome.signal} after step {outcome.last_step}; "
            f"continue with: brain2text train --resume {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    best = outcome.best
    if best.evaluation is not None:
        print(
            f"best {best.evaluation.split} PER {best.per:.4f} at step {best.step}; run folder {out}"
        )
    return 0


def _launch_torchrun(args: argparse.Namespace) -> int:
    """``train --nproc N``: the same command under torchrun, N processes on this machine. A
    SIGTERM or SIGUSR1 sent to this launcher is passed on to torchrun, which passes it to the
    processes: they stop together at one batch, as under torchrun directly."""
    import signal
    import subprocess

    from brain2text import distributed
    from brain2text.training.interrupt import STOP_SIGNALS

    if args.nproc < 1:
        raise ConfigError(f"--nproc {args.nproc}: give at least 1 process")
    if distributed.environment().enabled:
        raise ConfigError("--nproc is for launching; under torchrun, leave it out")
    out = args.resume or args.out
    if args.resume is None and args.run_file is not None:  # fail here, not in N processes
        from brain2text.config import load_run

        config = load_run(args.run_file, args.overrides)
        distributed.check_batch_split(config.train.batch_size, args.nproc)
        out = out or Path("runs") / config.name
    argv = ["train", *[str(a) for a in (args.run_file, *args.overrides) if a is not None]]
    for flag, value in (("--resume", args.resume), ("--out", args.out)):
        if value is not None:
            argv += [flag, str(value)]
    argv += [
        flag
        for flag, on in (
            ("--overwrite", args.overwrite),
            ("--quiet", args.quiet),
            ("--auto-resume", args.auto_resume),
        )
        if on
    ]
    child = subprocess.Popen(distributed.launch_command(args.nproc, argv))
    previous = {
        sig: signal.signal(sig, lambda signum, frame: child.send_signal(signum))
        for sig in STOP_SIGNALS
    }
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code and out is not None and _status_of(Path(out)) == "interrupted":
        print(
            f"interrupted; continue with: brain2text train --resume {out} --nproc {args.nproc}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED  # torchrun itself exits 1 when it was signalled
    return code


def _status_of(run_dir: Path) -> str | None:
    from brain2text.runs.folder import read_record

    return (read_record(run_dir) or {}).get("status")


def cmd_lr_find(args: argparse.Namespace) -> None:
    from brain2text.config import load_run
    from brain2text.training.lrfind import lr_find, summary

    # the sweep sets its own LRs: a max_lr_from file is not needed (it may not exist yet)
    config = load_run(args.run_file, args.overrides, resolve_max_lr=False)
    out = args.out or Path("runs") / f"{config.name}-lrfind"
    result = lr_find(config, out, start_lr=args.start_lr, end_lr=args.end_lr, batches=args.batches)
    print(summary(result, out))


def cmd_sweep(args: argparse.Namespace) -> int:
    from brain2text.reports.listing import collect_runs, runs_table

    if bool(args.grid) == (args.optuna is not None):
        raise ConfigError(
            "sweep: give --grid KEY=V1,V2 (repeatable) or --optuna N --space "
            "SPACE.yaml, one of the two"
        )
    if args.optuna is None:
        from brain2text.sweep.grid import parse_grid, run_sweep

        given = [
            flag
            for flag, on in (
                ("--space", args.space),
                ("--storage", args.storage),
                ("--study", args.study),
                ("--sampler-seed", args.sampler_seed is not None),
            )
            if on
        ]
        if given:
            raise ConfigError(f"sweep: {', '.join(given)} go with --optuna, not --grid")
        outcome = run_sweep(
            args.run_file,
            parse_grid(args.grid),
            seeds=args.seeds,
            overrides=args.overrides,
            out_dir=args.out,
            workers=args.workers,
            quiet=args.quiet,
        )
    else:
        from brain2text.sweep.search import plan_search, run_search, run_search_workers

        if args.space is None:
            raise ConfigError("sweep --optuna: give the search space with --space SPACE.yaml")
        if args.seeds != 1:
            raise ConfigError(
                "sweep --optuna: --seeds goes with --grid (search train.seed in the space instead)"
            )
        if args.workers < 1:
            raise ConfigError(f"--workers {args.workers}: give 1 or more")
        plan = plan_search(
            args.run_file,
            args.space,
            args.optuna,
            overrides=args.overrides,
            out_dir=args.out,
            storage=args.storage,
            study_name=args.study,
            prune_startup=args.prune_startup,
            sampler_seed=args.sampler_seed,
        )
        outcome = (
            run_search(plan, quiet=args.quiet)
            if args.workers == 1
            else run_search_workers(plan, args.workers)
        )
    out = outcome.out_dir
    runs = collect_runs(out)
    print(runs_table(runs, out) if runs else f"no child run in {out} yet")
    print(f"sweep page: {out / 'sweep.html'}")
    for name, why in outcome.failed.items():
        print(f"{name} failed: {why}", file=sys.stderr)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return 1 if outcome.failed else 0
