"""The parsers of the report commands: report, demo, runs, compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from brain2text import commands
from brain2text.cli.parsing import IntermixedParser


def add_reports_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``report``, ``demo``, ``runs`` and ``compare`` to ``sub``."""
    p = sub.add_parser(
        "report",
        help="HTML page with a run's curves, success criteria and "
        "evaluation (or a sweep folder's page)",
    )
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser(
        "demo",
        help="the whole pipeline on synthetic data: synthesise, prepare, train the CPU child "
        "of run13, evaluate, words, report",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("demo_workspace"),
        help="the demo's folder (default demo_workspace)",
    )
    p.add_argument(
        "--run-file", type=Path, default=None, help="the run to train (default run13_cpu_demo)"
    )
    p.add_argument("overrides", nargs="*")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="regenerate the synthetic data (it is reused while the sizes and seed are the same)",
    )
    g = p.add_argument_group(
        "sizes",
        "defaults are make demo's; the model's and the training's sizes are key=value "
        "overrides of the run file (train.n_batch=20 train.eval_every=10 model.n_units=16 ...)",
    )
    g.add_argument("--days", type=int, default=8, help="recording days, 1-24 (default 8)")
    g.add_argument(
        "--train-per-day",
        type=int,
        default=250,
        help="training trials a day; the last block of each day validates (default 250)",
    )
    g.add_argument("--test-per-day", type=int, default=20, help="test trials a day (default 20)")
    g.add_argument(
        "--holdout-per-day", type=int, default=20, help="hold-out trials a day (default 20)"
    )
    g.add_argument("--seed", type=int, default=0, help="synthesis seed (default 0)")
    g.add_argument(
        "--lm-sentences",
        type=int,
        default=20_000,
        help="generated training-side sentences added to the LM's corpus (default 20000)",
    )
    g.add_argument("--lm-weights", default="1,1.5,2,3", help="LM tuning grid (default 1,1.5,2,3)")
    g.add_argument(
        "--word-scores", default="-1,0,1,2", help="word-score tuning grid (default -1,0,1,2)"
    )
    g.add_argument("--beam", type=int, default=50, help="word search beam size (default 50)")
    g.add_argument("--show", type=int, default=4, help="test sentences printed (default 4)")
    g.add_argument(
        "--llm",
        default="smollm2-135m",
        metavar="MODEL",
        help="causal LM that rescores the n-gram's n-best lists (smollm2-135m, a Hugging Face "
        "folder or a .gguf file; 'none': n-gram only; default smollm2-135m)",
    )
    g.add_argument(
        "--llm-nbest",
        type=int,
        default=10,
        help="hypotheses per sentence the LLM rescores; more can find better sentences but "
        "cost CPU time (default 10)",
    )
    p.set_defaults(func=commands.cmd_demo)

    p = sub.add_parser("runs", help="one line per run folder: status, batches, best and final PER")
    p.add_argument("dir", type=Path, nargs="?", default=Path("runs"))
    p.set_defaults(func=commands.cmd_runs)

    p = sub.add_parser(
        "compare", help="overlay runs' curves in one figure and list config differences"
    )
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument(
        "--out", type=Path, default=Path("compare.png"), help="figure (default compare.png)"
    )
    p.set_defaults(func=commands.cmd_compare)
