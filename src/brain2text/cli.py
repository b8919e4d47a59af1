"""The ``brain2text`` command line. Every subcommand turns a Brain2TextError into a one-line
``error: ...`` message and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from brain2text import __version__
from brain2text.errors import Brain2TextError, ConfigError


def _cmd_synth(args: argparse.Namespace) -> None:
    from brain2text.synth import dataset_stats, generate

    if not args.stats_only:
        generate(args.out_dir, days=args.days, train_per_day=args.train_per_day,
                 test_per_day=args.test_per_day, holdout_per_day=args.holdout_per_day,
                 seed=args.seed, progress=not args.quiet, overwrite=args.overwrite,
                 compact=args.compact)
        print(f"wrote synthetic competitionData layout to {args.out_dir}")
    if args.stats or args.stats_only:
        print(dataset_stats(args.out_dir))


def _cmd_prepare(args: argparse.Namespace) -> None:
    import logging

    from brain2text.data.prepare import prepare

    # warnings (each test or hold-out trial left out) reach the console whatever else logs
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("warning: %(message)s"))
    console.setLevel(logging.WARNING)
    logger = logging.getLogger("brain2text.data.prepare")
    logger.addHandler(console)
    try:
        manifest = prepare(args.raw_dir, args.out_dir, skip_bad_trials=args.skip_bad_trials,
                           overwrite=args.overwrite, progress=not args.quiet,
                           phonemizer=args.phonemizer, lexicon=args.lexicon)
    finally:
        logger.removeHandler(console)
    splits = manifest["splits"]
    counts = ", ".join(f"{name} {s['n_trials']}" for name, s in splits.items())
    skipped = ", ".join(f"{name} {s['n_skipped']}" for name, s in splits.items() if s["n_skipped"])
    print(f"prepared {len(manifest['days'])} days ({counts} trials"
          f"{f'; left out: {skipped}' if skipped else ''}) in {args.out_dir}")
    labels = manifest["phonemizer"]
    if labels["name"] == "reference":
        print(f"reference phonemizer: words guessed by g2p_en's network: {len(labels['guessed'])}, "
              f"homograph tokens labelled without a POS tag: "
              f"{sum(labels['untagged_homographs'].values())} (listed under 'phonemizer' in "
              f"{Path(args.out_dir) / 'manifest.json'})")


def _cmd_import_pickle(args: argparse.Namespace) -> None:
    from brain2text.data.pickle_import import import_pickle

    manifest = import_pickle(args.pickle, args.out_dir, overwrite=args.overwrite,
                             competition_days=args.competition_days)
    counts = ", ".join(f"{name} {s['n_trials']}" for name, s in manifest["splits"].items())
    print(f"imported {args.pickle} ({counts} trials) into {args.out_dir}")


def _cmd_config(args: argparse.Namespace) -> None:
    from brain2text.config import load_run, packaged_run_files, to_yaml

    if args.list:
        for name, path in packaged_run_files().items():
            config = load_run(path, resolve_max_lr=False)
            about = " ".join(config.description.split())
            print(f"{name:24s} {about[:90] + ('...' if len(about) > 90 else '')}".rstrip())
        return
    if args.run_file is None:
        raise ConfigError("config: give a RUN_FILE (a path or a packaged run name; --list shows "
                          "the packaged runs)")
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


EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped by SIGTERM/SIGUSR1, resumable with --resume


def _cmd_train(args: argparse.Namespace) -> int:
    from brain2text import distributed
    from brain2text.config import load_run
    from brain2text.training.loop import INTERRUPTED, resume, train

    if args.nproc is not None:
        return _launch_torchrun(args)
    if args.resume is not None:
        given = [str(a) for a in (args.run_file, *args.overrides) if a is not None]
        if given or args.out or args.overwrite or args.auto_resume:
            raise ConfigError(f"--resume continues {args.resume} with the config stored in its "
                              "last.pt: no run file, override, --out, --overwrite or "
                              f"--auto-resume (got {' '.join(given) or 'a flag'})")
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
    _report_after_training(out)
    if outcome.status == INTERRUPTED:
        print(f"interrupted by {outcome.signal} after step {outcome.last_step}; "
              f"continue with: brain2text train --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    best = outcome.best
    if best.evaluation is not None:
        print(f"best {best.evaluation.split} PER {best.per:.4f} at step {best.step}; "
              f"run folder {out}")
    return 0


def _report_after_training(run_dir: Path) -> None:
    """The run report; a failure to draw it is said, never allowed to fail a trained run."""
    from brain2text.reports.report import write_report

    try:
        print(f"report: {write_report(run_dir)}")
    except Exception as exc:  # noqa: BLE001
        print(f"warning: no run report ({type(exc).__name__}: {' '.join(str(exc).split())})",
              file=sys.stderr)


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
    argv += [flag for flag, on in (("--overwrite", args.overwrite), ("--quiet", args.quiet),
                                   ("--auto-resume", args.auto_resume)) if on]
    child = subprocess.Popen(distributed.launch_command(args.nproc, argv))
    previous = {sig: signal.signal(sig, lambda signum, frame: child.send_signal(signum))
                for sig in STOP_SIGNALS}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code and out is not None and _status_of(Path(out)) == "interrupted":
        print(f"interrupted; continue with: brain2text train --resume {out} --nproc "
              f"{args.nproc}", file=sys.stderr)
        return EXIT_INTERRUPTED  # torchrun itself exits 1 when it was signalled
    return code


def _status_of(run_dir: Path) -> str | None:
    from brain2text.runs.folder import read_record

    return (read_record(run_dir) or {}).get("status")


def _cmd_lr_find(args: argparse.Namespace) -> None:
    from brain2text.config import load_run
    from brain2text.training.lrfind import lr_find, summary

    # the sweep sets its own LRs: a max_lr_from file is not needed (it may not exist yet)
    config = load_run(args.run_file, args.overrides, resolve_max_lr=False)
    out = args.out or Path("runs") / f"{config.name}-lrfind"
    result = lr_find(config, out, start_lr=args.start_lr, end_lr=args.end_lr,
                     batches=args.batches)
    print(summary(result, out))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    if args.lm is not None and args.wfst is not None:
        raise ConfigError("--lm and --wfst: decode with one of them")
    if args.ensemble:
        _cmd_evaluate_ensemble(args)
        return
    if len(args.run_dirs) > 1 or args.out is not None:
        raise ConfigError("evaluate: several run folders (or --out) make an ensemble: add "
                          "--ensemble")
    args.run_dir = args.run_dirs[0]
    if args.lm is not None or args.wfst is not None:
        _cmd_evaluate_words(args)
        return
    if any(v is not None for v in (args.beam, args.lm_weight, args.word_score, args.nbest)):
        raise ConfigError("--beam, --lm-weight, --word-score and --nbest are word decoding "
                          "options: give an LM folder with --lm")
    from brain2text.evaluation.evaluate import evaluate_run

    summary = evaluate_run(args.run_dir, split_name=args.split, checkpoint=args.checkpoint,
                           data_path=args.data, answers=args.answers, device_name=args.device,
                           weights=args.weights)
    where = args.run_dir / "eval" / (args.split if args.weights == "raw" else f"{args.split}-ema")
    if "per" in summary:
        print(f"{args.split} PER {summary['per']:.4f} over {summary['n_sentences']} sentences "
              f"({summary['edit_distance']} edits / {summary['n_phonemes']} phonemes); "
              f"files in {where}")
    else:
        print(f"decoded {summary['n_sentences']} unlabelled sentences to {where / 'decoded.txt'}")


def _cmd_evaluate_ensemble(args: argparse.Namespace) -> None:
    from brain2text.evaluation.ensemble import default_out, evaluate_ensemble

    out = args.out or default_out(args.run_dirs)
    summary = evaluate_ensemble(
        args.run_dirs, split_name=args.split, checkpoint=args.checkpoint, weights=args.weights,
        data_path=args.data, answers=args.answers, device_name=args.device, out=out,
        lm_dir=args.lm, wfst_dir=args.wfst, beam_size=args.beam, lm_weight=args.lm_weight,
        word_score=args.word_score, nbest=args.nbest)
    for member, per in summary.get("members", {}).items():
        print(f"  member {member}: {args.split} PER {per:.4f}")
    what = [f"PER {summary['per']:.4f}"] if "per" in summary else []
    if "wer" in summary:
        what.append(f"WER {summary['wer']:.4f}")
    print(f"ensemble of {len(args.run_dirs)}: {args.split} {', '.join(what) or 'decoded'} over "
          f"{summary['n_sentences']} sentences; files in {out / 'eval'}")


def _cmd_evaluate_words(args: argparse.Namespace) -> None:
    from brain2text.evaluation.evaluate import eval_folder
    from brain2text.evaluation.word_eval import evaluate_with_lm

    if args.wfst is not None and any(v is not None for v in (args.beam, args.lm_weight,
                                                             args.word_score, args.nbest)):
        raise ConfigError("--beam, --lm-weight, --word-score and --nbest are options of --lm; "
                          "--wfst searches with the Brain-to-Text '24 baseline's settings")
    summary = evaluate_with_lm(args.run_dir, args.lm, wfst_dir=args.wfst, split_name=args.split,
                               checkpoint=args.checkpoint, weights=args.weights,
                               data_path=args.data, answers=args.answers,
                               device_name=args.device, beam_size=args.beam,
                               lm_weight=args.lm_weight, word_score=args.word_score,
                               nbest=args.nbest)
    where = eval_folder(args.run_dir, args.split, args.weights,
                        "-lm" if args.lm is not None else "-wfst")
    speed = f"{summary['decode_ms_per_sentence']:.1f} ms/sentence"
    if summary["labelled"]:
        low, high = summary["wer_ci95"]
        plow, phigh = summary["per_ci95"]
        print(f"{args.split} WER {summary['wer']:.4f} (95% CI {low:.4f}-{high:.4f}), PER "
              f"{summary['per']:.4f} ({plow:.4f}-{phigh:.4f}) over {summary['n_sentences']} "
              f"sentences; {speed}; files in {where}")
    else:
        print(f"decoded {summary['n_sentences']} unlabelled sentences to words ({speed}): "
              f"{where / 'decoded.txt'}")
    if args.split == "competition":
        print(f"submission: {where / 'submission.txt'}")


def _cmd_lm_tune(args: argparse.Namespace) -> None:
    from brain2text.evaluation.tuning import tune_lm, tuning_table

    lm_weights = _floats(args.lm_weights, "--lm-weights")
    word_scores = _floats(args.word_scores, "--word-scores")
    result = tune_lm(args.run_dir, args.lm, lm_weights=lm_weights, word_scores=word_scores,
                     beam_size=args.beam, checkpoint=args.checkpoint, weights=args.weights,
                     data_path=args.data, device_name=args.device)
    print(tuning_table(result))


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag} {text}: give comma-separated numbers, e.g. 0.5,1,2") from None
    return values


def _cmd_sweep(args: argparse.Namespace) -> int:
    from brain2text.reports.listing import collect_runs, runs_table
    from brain2text.sweep import parse_grid, run_sweep

    out, interrupted = run_sweep(args.run_file, parse_grid(args.grid), seeds=args.seeds,
                                 overrides=args.overrides, out_dir=args.out, quiet=args.quiet)
    print(runs_table(collect_runs(out), out))
    print(f"best PER against each varied key: {out / 'sweep.png'}")
    return EXIT_INTERRUPTED if interrupted else 0


def _cmd_report(args: argparse.Namespace) -> None:
    from brain2text.reports.report import write_report

    index = write_report(args.run_dir)
    print(f"report in {index}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from brain2text.demo import run_demo

    run_demo(args.workdir, run_file=args.run_file, overrides=args.overrides, fresh=args.fresh)


def _cmd_runs(args: argparse.Namespace) -> None:
    from brain2text.reports.listing import collect_runs, runs_table

    runs = collect_runs(args.dir)
    print(runs_table(runs, args.dir) if runs else f"no run folder under {args.dir}")


def _cmd_compare(args: argparse.Namespace) -> None:
    from brain2text.reports.compare import config_table, load_runs, save_figure

    runs = load_runs(args.run_dirs)
    save_figure(runs, args.out)
    print(config_table(runs))
    print(f"curves of {len(runs)} runs in {args.out}")


def _cmd_lm_build(args: argparse.Namespace) -> None:
    from brain2text.decoding.lm import build_lm

    info = build_lm(args.corpus, args.out, order=args.order, prune=args.prune,
                    min_count=args.min_count, lexicon=args.lexicon, overwrite=args.overwrite)
    ngrams = "/".join(str(n) for n in info["ngrams"].values())
    left_out = info["left_out"]
    print(f"built a {info['order']}-gram LM from {info['n_sentences']} sentences: vocabulary "
          f"{info['vocabulary_size']} words, n-grams {ngrams}, words left out: "
          f"{left_out['n_words']} ({left_out['n_tokens']} tokens counted as <unk>), in {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brain2text", description=__doc__.split(".")[0])
    parser.add_argument("--version", action="version", version=f"brain2text {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write realistic synthetic recordings in the competitionData layout")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--days", type=int, default=24)
    p.add_argument("--train-per-day", type=int, default=40)
    p.add_argument("--test-per-day", type=int, default=10)
    p.add_argument("--holdout-per-day", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compact", action="store_true",
                   help="store counts as uint8 and spikePow as single (5x smaller files) instead of doubles")
    p.add_argument("--stats", action="store_true", help="print statistics against the targets afterwards")
    p.add_argument("--stats-only", action="store_true", help="only print statistics of OUT_DIR")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("prepare", help="competitionData .mat files -> memory-mappable dataset")
    p.add_argument("raw_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--skip-bad-trials", action="store_true",
                   help="skip (and count) trials with unknown words, NaN/Inf or empty text instead of stopping; "
                        "each test or hold-out trial left out is named")
    p.add_argument("--phonemizer", choices=["cmu", "reference"], default="cmu",
                   help="cmu: CMU dictionary, an unknown word stops prepare (default); reference: "
                        "g2p_en 2.1.0's rules offline (its tokenizer and network guess; homographs "
                        "without POS tags), see docs/prepared-format.md")
    p.add_argument("--lexicon", type=Path, default=None, metavar="FILE",
                   help="CMU-format pronunciations ('WORD  P1 P2 ...') read before the CMU dictionary")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("import-pickle", help="convert a ptDecoder_ctc pickle safely")
    p.add_argument("pickle", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--competition-days", nargs="+", default=None,
                   help="session names of the pickle's competition days, in order")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_import_pickle)

    p = sub.add_parser("config", help="print a run's fully resolved config (--list: packaged runs)")
    p.add_argument("run_file", type=Path, nargs="?",
                   help="a run file, or the name of a packaged one (run13_onecycle_safe)")
    p.add_argument("--list", action="store_true", help="list the run files shipped with brain2text")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.n_batch=50")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("train", help="train a run, or resume one (--resume RUN_DIR)")
    p.add_argument("run_file", type=Path, nargs="?", help="run file (not with --resume)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.n_batch=50")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue a killed or interrupted run from its checkpoints/last.pt")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<name>)")
    p.add_argument("--auto-resume", action="store_true",
                   help="continue the run folder's run from its last.pt when it has one, else "
                        "start it (one command for Slurm requeues and torchrun restarts)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train with DistributedDataParallel in N processes on this machine "
                        "(runs the command under torchrun; one per GPU, or CPU with gloo)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("lr-find", help="LR range test: suggest optim.max_lr for OneCycle")
    p.add_argument("run_file", type=Path)
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.batch_size=32")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/<name>-lrfind)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=1.0)
    p.add_argument("--batches", type=int, default=200, help="batches of the sweep from start to end")
    p.set_defaults(func=_cmd_lr_find)

    p = sub.add_parser("evaluate", help="evaluate a run's checkpoint (or an ensemble of runs)")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--ensemble", action="store_true",
                   help="average the runs' per-frame log-probabilities and decode them as one")
    p.add_argument("--out", type=Path, default=None,
                   help="the ensemble's folder (default runs/ensemble-<run>+<run>...)")
    p.add_argument("--split", default="test", choices=["test", "competition", "val"])
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--data", type=Path, default=None, help="prepared dataset (default: the run's data.path)")
    p.add_argument("--answers", type=Path, default=None, help="hold-out answers JSON to score --split competition")
    p.add_argument("--weights", default="raw", choices=["raw", "ema"],
                   help="the raw weights or their EMA (runs with train.ema_decay; "
                        "files in eval/<split>-ema/)")
    p.add_argument("--device", default="auto")
    p.add_argument("--lm", type=Path, default=None, metavar="LM_DIR",
                   help="decode words with this LM folder (brain2text lm build): WER, n-best, "
                        "files in eval/<split>-lm/ (submission.txt for the hold-out)")
    p.add_argument("--wfst", type=Path, default=None, metavar="GRAPH_DIR",
                   help="decode words with a Kaldi graph (TLG.fst + words.txt, as the "
                        "Brain-to-Text '24 release ships it): files in eval/<split>-wfst/")
    p.add_argument("--beam", type=int, default=None, help="beam size (default 50)")
    p.add_argument("--lm-weight", type=float, default=None,
                   help="default: RUN/lm_tuning.json for this LM, else 2.0")
    p.add_argument("--word-score", type=float, default=None,
                   help="default: RUN/lm_tuning.json for this LM, else 0")
    p.add_argument("--nbest", type=int, default=None, help="hypotheses kept per sentence (default 1)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("sweep", help="train a grid of child runs of a run file, one after another")
    p.add_argument("run_file", type=Path)
    p.add_argument("overrides", nargs="*", help="dotted overrides for every child, as in train")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a dotted key and its values; repeat for a product of several keys")
    p.add_argument("--seeds", type=int, default=1,
                   help="N seeds per grid point (train.seed, train.seed + 1, ...)")
    p.add_argument("--out", type=Path, default=None, help="sweep folder (default runs/<name>-sweep)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="HTML page with a run's curves, success criteria and evaluation")
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help="synthesise, prepare, train the CPU child of run13, evaluate")
    p.add_argument("--workdir", type=Path, default=Path("demo_workspace"))
    p.add_argument("--run-file", type=Path, default=None)
    p.add_argument("overrides", nargs="*")
    p.add_argument("--fresh", action="store_true", help="regenerate the synthetic data")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("runs", help="one line per run folder: status, batches, best and final PER")
    p.add_argument("dir", type=Path, nargs="?", default=Path("runs"))
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("compare", help="overlay runs' curves in one figure and list config differences")
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=Path("compare.png"), help="figure (default compare.png)")
    p.set_defaults(func=_cmd_compare)

    from brain2text.decoding.beam import DEFAULT_LM_WEIGHTS, DEFAULT_WORD_SCORES
    from brain2text.decoding.lm import DEFAULT_MIN_COUNT, DEFAULT_ORDER, DEFAULT_PRUNE

    p = sub.add_parser("lm", help="word language models for lexicon decoding")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("build", help="a text corpus -> LM folder (lm.arpa, lexicon.txt, lm.json)")
    p.add_argument("--corpus", type=Path, required=True, metavar="FILE.txt",
                   help="one sentence a line, cleaned like prepare cleans transcripts")
    p.add_argument("--order", type=int, default=DEFAULT_ORDER, help=f"n-gram order (default {DEFAULT_ORDER})")
    p.add_argument("--prune", type=float, default=DEFAULT_PRUNE, metavar="X",
                   help="entropy pruning threshold, a relative perplexity change such as 1e-8 "
                        "(default 0: none)")
    p.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT, metavar="N",
                   help="drop 2-grams and longer seen fewer than N times (default 1: keep all)")
    p.add_argument("--lexicon", type=Path, default=None, metavar="FILE",
                   help="CMU-format pronunciations ('WORD  P1 P2 ...', WORD(2) alternates) used "
                        "instead of the CMU dictionary's for their words")
    p.add_argument("--out", type=Path, required=True, metavar="LM_DIR")
    p.add_argument("--overwrite", action="store_true", help="replace an existing LM folder")
    p.set_defaults(func=_cmd_lm_build)
    p = lm_sub.add_parser("tune", help="choose LM weight and word score on the run's validation split")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--lm", type=Path, required=True, metavar="LM_DIR")
    p.add_argument("--lm-weights", default=",".join(f"{v:g}" for v in DEFAULT_LM_WEIGHTS),
                   help="comma-separated grid (default %(default)s)")
    p.add_argument("--word-scores", default=",".join(f"{v:g}" for v in DEFAULT_WORD_SCORES),
                   help="comma-separated grid (default %(default)s)")
    p.add_argument("--beam", type=int, default=None, help="beam size (default 50)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--weights", default="raw", choices=["raw", "ema"])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_lm_tune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.func is not _cmd_train and os.environ.get("WORLD_SIZE", "1") != "1":
            raise ConfigError(f"{args.command}: only train runs under torchrun "
                              "(this command runs in one process)")
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
