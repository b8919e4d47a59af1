"""Reading runs: ``report``, ``runs``, ``compare``; and ``demo``."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace) -> None:
    from brain2text.reports.listing import SWEEP_FILE
    from brain2text.reports.report import write_report
    from brain2text.reports.sweep import write_sweep_outputs

    if (args.run_dir / SWEEP_FILE).is_file():  # a sweep folder: its page
        print(f"sweep page in {write_sweep_outputs(args.run_dir)}")
        return
    index = write_report(args.run_dir)
    print(f"report in {index}")


def cmd_demo(args: argparse.Namespace) -> None:
    from brain2text.commands.evaluation import _floats
    from brain2text.demo import DemoSizes, run_demo

    sizes = DemoSizes(
        days=args.days,
        train_per_day=args.train_per_day,
        test_per_day=args.test_per_day,
        holdout_per_day=args.holdout_per_day,
        seed=args.seed,
        lm_sentences=args.lm_sentences,
        lm_weights=_floats(args.lm_weights, "--lm-weights"),
        word_scores=_floats(args.word_scores, "--word-scores"),
        beam_size=args.beam,
        shown=args.show,
        llm=None if args.llm.strip().lower() == "none" else args.llm,
        llm_nbest=args.llm_nbest,
    )
    run_demo(
        args.workdir,
        run_file=args.run_file,
        overrides=args.overrides,
        fresh=args.fresh,
        sizes=sizes,
    )


def cmd_runs(args: argparse.Namespace) -> None:
    from brain2text.reports.listing import collect_runs, runs_table

    runs = collect_runs(args.dir)
    print(runs_table(runs, args.dir) if runs else f"no run folder under {args.dir}")


def cmd_compare(args: argparse.Namespace) -> None:
    from brain2text.reports.compare import config_table, load_runs, save_figure

    runs = load_runs(args.run_dirs)
    save_figure(runs, args.out)
    print(config_table(runs))
    print(f"curves of {len(runs)} runs in {args.out}")
