"""The ``brain2text`` command line. Every subcommand turns a Brain2TextError into a one-line
``error: ...`` message and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar, overload

from brain2text import __version__, commands
from brain2text.commands import EXIT_INTERRUPTED
from brain2text.errors import Brain2TextError, ConfigError

__all__ = ["EXIT_INTERRUPTED", "build_parser", "main"]

_N = TypeVar("_N")


class IntermixedParser(argparse.ArgumentParser):
    """A subcommand's parser whose positionals may come before, between or after its options
    (``train RUN --out DIR key=value``), as :meth:`parse_intermixed_args` parses them. A parser
    with subcommands of its own (``lm``) parses as argparse does, which is all it can do."""

    _intermixing = False

    @overload
    def parse_known_args(
        self, args: Iterable[str] | None = None, namespace: None = None
    ) -> tuple[argparse.Namespace, list[str]]: ...
    @overload
    def parse_known_args(
        self, args: Iterable[str] | None, namespace: _N
    ) -> tuple[_N, list[str]]: ...
    @overload
    def parse_known_args(self, *, namespace: _N) -> tuple[_N, list[str]]: ...

    def parse_known_args(
        self, args: Iterable[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        nested = any(
            a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in self._get_positional_actions()
        )
        if self._intermixing or nested:  # within parse_known_intermixed_args: argparse's pass
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(None if args is None else list(args), namespace)
        finally:
            self._intermixing = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brain2text", description=__doc__.split(".")[0])
    parser.add_argument("--version", action="version", version=f"brain2text {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=IntermixedParser)

    p = sub.add_parser(
        "synth",
        help="write realistic synthetic recordings in the competitionData "
        "or the Brain-to-Text '25 layout",
    )
    p.add_argument("out_dir", type=Path)
    p.add_argument(
        "--layout",
        choices=["competitionData", "b2t25"],
        default="competitionData",
        help="b2t25: OUT_DIR/hdf5_data_final/t15.*/data_{train,val,test}.hdf5 "
        "(--days sessions; --test-per-day val trials, --holdout-per-day "
        "unlabelled test trials a session)",
    )
    p.add_argument("--days", type=int, default=24)
    p.add_argument("--train-per-day", type=int, default=40)
    p.add_argument("--test-per-day", type=int, default=10)
    p.add_argument("--holdout-per-day", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--compact",
        action="store_true",
        help="store counts as uint8 and spikePow as single (5x smaller files) instead of doubles",
    )
    p.add_argument(
        "--stats", action="store_true", help="print statistics against the targets afterwards"
    )
    p.add_argument("--stats-only", action="store_true", help="only print statistics of OUT_DIR")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=commands.cmd_synth)

    p = sub.add_parser(
        "prepare",
        help="competitionData .mat files or Brain-to-Text '25 HDF5 "
        "sessions -> memory-mappable dataset",
    )
    p.add_argument("raw_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument(
        "--skip-bad-trials",
        action="store_true",
        help="skip (and count) trials with unknown words, NaN/Inf or empty text instead of "
        "stopping; each test or hold-out trial left out is named",
    )
    p.add_argument(
        "--phonemizer",
        choices=["cmu", "reference"],
        default="cmu",
        help="cmu: CMU dictionary, an unknown word stops prepare (default); reference: "
        "g2p_en 2.1.0's rules offline (its tokenizer and network guess; homographs "
        "without POS tags), see docs/prepared-format.md",
    )
    p.add_argument(
        "--lexicon",
        type=Path,
        default=None,
        metavar="FILE",
        help="CMU-format pronunciations ('WORD  P1 P2 ...') read before the CMU dictionary",
    )
    p.add_argument(
        "--features",
        default="tx1,spikePow",
        metavar="F1,F2",
        help="competitionData fields to take, among tx1..tx4 (-3.5 .. -6.5 RMS "
        "crossings) and spikePow (default tx1,spikePow)",
    )
    p.add_argument(
        "--arrays",
        default="6v",
        metavar="A1,A2",
        help="competitionData electrode arrays to take: 6v (columns 0-127), "
        "44 (128-255); default 6v",
    )
    p.add_argument(
        "--normalize",
        choices=["block", "none"],
        default=None,
        help="block: z-score each block of each file (competitionData default); none: "
        "the features as released (Brain-to-Text '25 default)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=commands.cmd_prepare)

    p = sub.add_parser("import-pickle", help="convert a ptDecoder_ctc pickle safely")
    p.add_argument("pickle", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument(
        "--competition-days",
        nargs="+",
        default=None,
        help="session names of the pickle's competition days, in order",
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=commands.cmd_import_pickle)

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

    p = sub.add_parser("evaluate", help="evaluate a run's checkpoint (or an ensemble of runs)")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="average the runs' per-frame log-probabilities and decode them as one",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the ensemble's folder (default runs/ensemble-<run>+<run>...)",
    )
    p.add_argument("--split", default="test", choices=["test", "competition", "val"])
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument(
        "--data", type=Path, default=None, help="prepared dataset (default: the run's data.path)"
    )
    p.add_argument(
        "--answers",
        type=Path,
        default=None,
        help="hold-out answers JSON to score --split competition",
    )
    p.add_argument(
        "--weights",
        default="raw",
        choices=["raw", "ema"],
        help="the raw weights or their EMA (runs with train.ema_decay; files in eval/<split>-ema/)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--lm",
        type=Path,
        default=None,
        metavar="LM_DIR",
        help="decode words with this LM folder (brain2text lm build): WER, n-best, "
        "files in eval/<split>-lm/ (submission.txt for the hold-out)",
    )
    p.add_argument(
        "--wfst",
        type=Path,
        default=None,
        metavar="GRAPH_DIR",
        help="decode words with a Kaldi graph (TLG.fst + words.txt, as the "
        "Brain-to-Text '24 release ships it): files in eval/<split>-wfst/",
    )
    p.add_argument("--beam", type=int, default=None, help="beam size (default 50)")
    p.add_argument(
        "--lm-weight",
        type=float,
        default=None,
        help="default: RUN/lm_tuning.json for this LM, else 2.0",
    )
    p.add_argument(
        "--word-score",
        type=float,
        default=None,
        help="default: RUN/lm_tuning.json for this LM, else 0",
    )
    p.add_argument(
        "--nbest", type=int, default=None, help="hypotheses kept per sentence (default 1)"
    )
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser(
        "decode",
        help="decode a raw recording (a .mat day file, a B2T'25 "
        "split file or session folder) with a trained run",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("recording", type=Path)
    p.add_argument("--lm", type=Path, default=None, help="LM folder (brain2text lm build): words")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--weights", choices=["raw", "ema"], default="raw")
    p.add_argument(
        "--day", default=None, help="the session the recording belongs to (default: from its name)"
    )
    p.add_argument(
        "--norm",
        choices=["file", "train"],
        default="file",
        help="z-score with the file's own block statistics (default), or with the "
        "training statistics of its day (2023 layout)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="one JSON line per trial (default: print a line per trial)",
    )
    p.set_defaults(func=commands.cmd_decode)

    p = sub.add_parser(
        "adapt",
        help="fit a new recording day's input layer alone on its "
        "labelled sentences; a new run folder that knows the day",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "recording",
        type=Path,
        help="the new day's .mat file (or B2T'25 session folder / split file)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="adapt.steps=N adapt.lr=X adapt.batch_size=N adapt.held_out_fraction=F",
    )
    p.add_argument("--day", required=True, help="the new day's session name")
    p.add_argument("--out", type=Path, default=None, help="default runs/<run>+<day>")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=commands.cmd_adapt)

    p = sub.add_parser(
        "stream",
        help="replay one recorded trial through a causal decoder "
        "chunk by chunk, with the growing hypothesis and latency",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("recording", type=Path)
    p.add_argument(
        "--trial",
        type=int,
        required=True,
        help="the trial's index in the recording (a B2T'25 session folder: its files "
        "in train, val, test order)",
    )
    p.add_argument("--chunk", type=int, default=4, help="bins per step (4 = 80 ms)")
    p.add_argument("--realtime", action="store_true", help="wait 20 ms per bin, as it arrives")
    p.add_argument("--lm", type=Path, default=None, help="LM folder: the partial sentence too")
    p.add_argument("--day", default=None, help="default: the recording's session")
    p.set_defaults(func=commands.cmd_stream)

    p = sub.add_parser(
        "export",
        help="write a trained decoder as ONNX, TorchScript or safetensors, with a JSON sidecar",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("--format", choices=["onnx", "torchscript", "safetensors"], required=True)
    p.add_argument("--out", type=Path, required=True, metavar="FILE")
    p.add_argument(
        "--day",
        action="append",
        default=None,
        metavar="D",
        help="a day whose input layer to include (repeatable; default all)",
    )
    p.add_argument(
        "--streaming",
        action="store_true",
        help="onnx: the streaming form of a causal model for one --day (a step per "
        "stride_len bins, state in and out)",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--weights", choices=["raw", "ema"], default="raw")
    p.set_defaults(func=commands.cmd_export)

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

    from brain2text.decoding.beam import DEFAULT_LM_WEIGHTS, DEFAULT_WORD_SCORES
    from brain2text.decoding.lm import DEFAULT_MIN_COUNT, DEFAULT_ORDER, DEFAULT_PRUNE

    p = sub.add_parser("lm", help="word language models for lexicon decoding")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser(
        "build", help="a text corpus -> LM folder (lm.arpa, lexicon.txt, lm.json)"
    )
    p.add_argument(
        "--corpus",
        type=Path,
        required=True,
        metavar="FILE.txt",
        help="one sentence a line, cleaned like prepare cleans transcripts",
    )
    p.add_argument(
        "--order", type=int, default=DEFAULT_ORDER, help=f"n-gram order (default {DEFAULT_ORDER})"
    )
    p.add_argument(
        "--prune",
        type=float,
        default=DEFAULT_PRUNE,
        metavar="X",
        help="entropy pruning threshold, a relative perplexity change such as 1e-8 "
        "(default 0: none)",
    )
    p.add_argument(
        "--min-count",
        type=int,
        default=DEFAULT_MIN_COUNT,
        metavar="N",
        help="drop 2-grams and longer seen fewer than N times (default 1: keep all)",
    )
    p.add_argument(
        "--lexicon",
        type=Path,
        default=None,
        metavar="FILE",
        help="CMU-format pronunciations ('WORD  P1 P2 ...', WORD(2) alternates) used "
        "instead of the CMU dictionary's for their words",
    )
    p.add_argument("--out", type=Path, required=True, metavar="LM_DIR")
    p.add_argument("--overwrite", action="store_true", help="replace an existing LM folder")
    p.set_defaults(func=commands.cmd_lm_build)
    p = lm_sub.add_parser(
        "tune", help="choose LM weight and word score on the run's validation split"
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("--lm", type=Path, required=True, metavar="LM_DIR")
    p.add_argument(
        "--lm-weights",
        default=",".join(f"{v:g}" for v in DEFAULT_LM_WEIGHTS),
        help="comma-separated grid (default %(default)s)",
    )
    p.add_argument(
        "--word-scores",
        default=",".join(f"{v:g}" for v in DEFAULT_WORD_SCORES),
        help="comma-separated grid (default %(default)s)",
    )
    p.add_argument("--beam", type=int, default=None, help="beam size (default 50)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--weights", default="raw", choices=["raw", "ema"])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=commands.cmd_lm_tune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.func is not commands.cmd_train and os.environ.get("WORLD_SIZE", "1") != "1":
            raise ConfigError(
                f"{args.command}: only train runs under torchrun (this command runs in one process)"
            )
        code = args.func(args)
    except Brain2TextError as exc:
        from brain2text.distributed import environment

        ranks = environment()
        where = f" (rank {ranks.rank} of {ranks.world_size})" if ranks.enabled else ""
        print(f"error{where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`brain2text config ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
