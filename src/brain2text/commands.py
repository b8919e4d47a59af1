"""What each ``brain2text`` subcommand does, one function a command (``cli`` parses the
arguments and reports errors). Heavy imports happen inside the functions, so that a command
loads only what it uses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brain2text.errors import ConfigError
from brain2text.training.interrupt import EXIT_INTERRUPTED


def cmd_synth(args: argparse.Namespace) -> None:
    from brain2text.synth import dataset_stats, generate

    if args.layout == "b2t25":
        from brain2text.synth.b2t25 import generate_b2t25

        if args.stats or args.stats_only or args.compact:
            raise ConfigError("synth --layout b2t25: --stats, --stats-only and --compact go "
                              "with the competitionData layout")
        root = generate_b2t25(args.out_dir, sessions=args.days,
                              train_per_session=args.train_per_day,
                              val_per_session=args.test_per_day,
                              test_per_session=args.holdout_per_day, seed=args.seed,
                              progress=not args.quiet, overwrite=args.overwrite)
        print(f"wrote synthetic Brain-to-Text '25 sessions to {root}")
        return
    if not args.stats_only:
        generate(args.out_dir, days=args.days, train_per_day=args.train_per_day,
                 test_per_day=args.test_per_day, holdout_per_day=args.holdout_per_day,
                 seed=args.seed, progress=not args.quiet, overwrite=args.overwrite,
                 compact=args.compact)
        print(f"wrote synthetic competitionData layout to {args.out_dir}")
    if args.stats or args.stats_only:
        print(dataset_stats(args.out_dir))


def cmd_prepare(args: argparse.Namespace) -> None:
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
                           phonemizer=args.phonemizer, lexicon=args.lexicon,
                           normalize=args.normalize, features=args.features.split(","),
                           arrays=args.arrays.split(","))
    finally:
        logger.removeHandler(console)
    splits = manifest["splits"]
    counts = ", ".join(f"{name} {s['n_trials']}" for name, s in splits.items())
    skipped = ", ".join(f"{name} {s['n_skipped']}" for name, s in splits.items() if s["n_skipped"])
    print(f"prepared {len(manifest['days'])} days ({counts} trials"
          f"{f'; left out: {skipped}' if skipped else ''}) in {args.out_dir}")
    check = manifest.get("label_check")
    if check is not None:
        print(f"released labels against this project's phonemisation: {check['n_mismatched']} "
              f"of {check['n_checked']} differ (kept as released; listed under 'label_check' in "
              f"{Path(args.out_dir) / 'manifest.json'})")
    labels = manifest["phonemizer"]
    if labels["name"] == "reference":
        print(f"reference phonemizer: words guessed by g2p_en's network: {len(labels['guessed'])}, "
              f"homograph tokens labelled without a POS tag: "
              f"{sum(labels['untagged_homographs'].values())} (listed under 'phonemizer' in "
              f"{Path(args.out_dir) / 'manifest.json'})")


def cmd_import_pickle(args: argparse.Namespace) -> None:
    from brain2text.data.pickle_import import import_pickle

    manifest = import_pickle(args.pickle, args.out_dir, overwrite=args.overwrite,
                             competition_days=args.competition_days)
    counts = ", ".join(f"{name} {s['n_trials']}" for name, s in manifest["splits"].items())
    print(f"imported {args.pickle} ({counts} trials) into {args.out_dir}")


def cmd_config(args: argparse.Namespace) -> None:
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




def cmd_train(args: argparse.Namespace) -> int:
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


def cmd_lr_find(args: argparse.Namespace) -> None:
    from brain2text.config import load_run
    from brain2text.training.lrfind import lr_find, summary

    # the sweep sets its own LRs: a max_lr_from file is not needed (it may not exist yet)
    config = load_run(args.run_file, args.overrides, resolve_max_lr=False)
    out = args.out or Path("runs") / f"{config.name}-lrfind"
    result = lr_find(config, out, start_lr=args.start_lr, end_lr=args.end_lr,
                     batches=args.batches)
    print(summary(result, out))


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.lm is not None and args.wfst is not None:
        raise ConfigError("--lm and --wfst: decode with one of them")
    if args.ensemble:
        cmd_evaluate_ensemble(args)
        return
    if len(args.run_dirs) > 1 or args.out is not None:
        raise ConfigError("evaluate: several run folders (or --out) make an ensemble: add "
                          "--ensemble")
    args.run_dir = args.run_dirs[0]
    if args.lm is not None or args.wfst is not None:
        cmd_evaluate_words(args)
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


def cmd_evaluate_ensemble(args: argparse.Namespace) -> None:
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


def cmd_evaluate_words(args: argparse.Namespace) -> None:
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


def cmd_lm_tune(args: argparse.Namespace) -> None:
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


def cmd_decode(args: argparse.Namespace) -> None:
    import json
    import warnings

    from brain2text.atomic import atomic_write_text
    from brain2text.evaluation.metrics import edit_distance
    from brain2text.inference.decoder import Decoder
    from brain2text.inference.raw import read_recording
    from brain2text.phonemes import clean_text, phonemize

    decoder = Decoder.load(args.run_dir, checkpoint=args.checkpoint, weights=args.weights,
                           lm=args.lm)
    trials = read_recording(args.recording, decoder.feature_spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = decoder.decode_batch([(t.features, args.day or t.day) for t in trials])
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {message}", file=sys.stderr)
    rows = []
    for trial, out in zip(trials, outs):
        row = {"file": trial.source, "trial": trial.trial, "block": trial.block,
               "day": out.day, "day_used": out.day_used, "phonemes": " ".join(out.phonemes)}
        if out.text is not None:
            row["text"] = out.text
        if trial.sentence:
            row["sentence"] = trial.sentence
            try:
                ref = phonemize(clean_text(trial.sentence))
                row["per"] = edit_distance(ref, list(out.phonemes)) / max(len(ref), 1)
            except KeyError:
                pass  # a word outside the CMU dictionary: no PER for this trial
        rows.append(row)
    if args.out is not None:
        atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in rows))
        print(f"decoded {len(rows)} trials of {args.recording} to {args.out}")
        return
    for row in rows:
        print(f"{row['day']} trial {row['trial']}: {row.get('text', row['phonemes'])}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from brain2text.reports.listing import collect_runs, runs_table

    if bool(args.grid) == (args.optuna is not None):
        raise ConfigError("sweep: give --grid KEY=V1,V2 (repeatable) or --optuna N --space "
                          "SPACE.yaml, one of the two")
    if args.optuna is None:
        from brain2text.sweep.grid import parse_grid, run_sweep

        given = [flag for flag, on in (("--space", args.space), ("--storage", args.storage),
                                       ("--study", args.study),
                                       ("--sampler-seed", args.sampler_seed is not None)) if on]
        if given:
            raise ConfigError(f"sweep: {', '.join(given)} go with --optuna, not --grid")
        outcome = run_sweep(args.run_file, parse_grid(args.grid), seeds=args.seeds,
                            overrides=args.overrides, out_dir=args.out, workers=args.workers,
                            quiet=args.quiet)
    else:
        from brain2text.sweep.search import plan_search, run_search, run_search_workers

        if args.space is None:
            raise ConfigError("sweep --optuna: give the search space with --space SPACE.yaml")
        if args.seeds != 1:
            raise ConfigError("sweep --optuna: --seeds goes with --grid (search train.seed "
                              "in the space instead)")
        if args.workers < 1:
            raise ConfigError(f"--workers {args.workers}: give 1 or more")
        plan = plan_search(args.run_file, args.space, args.optuna, overrides=args.overrides,
                           out_dir=args.out, storage=args.storage, study_name=args.study,
                           prune_startup=args.prune_startup, sampler_seed=args.sampler_seed)
        outcome = (run_search(plan, quiet=args.quiet) if args.workers == 1
                   else run_search_workers(plan, args.workers))
    out = outcome.out_dir
    runs = collect_runs(out)
    print(runs_table(runs, out) if runs else f"no child run in {out} yet")
    print(f"sweep page: {out / 'sweep.html'}")
    for name, why in outcome.failed.items():
        print(f"{name} failed: {why}", file=sys.stderr)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return 1 if outcome.failed else 0


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
    from brain2text.demo import run_demo

    run_demo(args.workdir, run_file=args.run_file, overrides=args.overrides, fresh=args.fresh)


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


def cmd_lm_build(args: argparse.Namespace) -> None:
    from brain2text.decoding.lm import build_lm

    info = build_lm(args.corpus, args.out, order=args.order, prune=args.prune,
                    min_count=args.min_count, lexicon=args.lexicon, overwrite=args.overwrite)
    ngrams = "/".join(str(n) for n in info["ngrams"].values())
    left_out = info["left_out"]
    print(f"built a {info['order']}-gram LM from {info['n_sentences']} sentences: vocabulary "
          f"{info['vocabulary_size']} words, n-grams {ngrams}, words left out: "
          f"{left_out['n_words']} ({left_out['n_tokens']} tokens counted as <unk>), in {args.out}")
