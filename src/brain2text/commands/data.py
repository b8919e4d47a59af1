"""The data commands: ``synth``, ``prepare``, ``import-pickle``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brain2text.errors import ConfigError


def cmd_synth(args: argparse.Namespace) -> None:
    from brain2text.synth import dataset_stats, generate

    if args.layout == "b2t25":
        from brain2text.synth.b2t25 import generate_b2t25

        if args.stats or args.stats_only or args.compact or args.sentences is not None:
            raise ConfigError(
                "synth --layout b2t25: --stats, --stats-only, --compact and --sentences go "
                "with the competitionData layout"
            )
        root = generate_b2t25(
            args.out_dir,
            sessions=args.days,
            train_per_session=args.train_per_day,
            val_per_session=args.test_per_day,
            test_per_session=args.holdout_per_day,
            seed=args.seed,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
        print(f"wrote synthetic Brain-to-Text '25 sessions to {root}")
        return
    if not args.stats_only:
        generate(
            args.out_dir,
            days=args.days,
            train_per_day=args.train_per_day,
            test_per_day=args.test_per_day,
            holdout_per_day=args.holdout_per_day,
            seed=args.seed,
            progress=not args.quiet,
            overwrite=args.overwrite,
            compact=args.compact,
            sentences=args.sentences,
        )
        print(f"wrote synthetic competitionData layout to {args.out_dir}")
    if args.stats or args.stats_only:
        print(dataset_stats(args.out_dir))


def cmd_prepare(args: argparse.Namespace) -> None:
    import logging

    from brain2text.data.manifest import MANIFEST_FILE
    from brain2text.data.prepare import prepare

    # warnings (each test or hold-out trial left out) reach the console whatever else logs
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("warning: %(message)s"))
    console.setLevel(logging.WARNING)
    logger = logging.getLogger("brain2text.data.prepare")
    logger.addHandler(console)
    try:
        manifest = prepare(
            args.raw_dir,
            args.out_dir,
            skip_bad_trials=args.skip_bad_trials,
            overwrite=args.overwrite,
            progress=not args.quiet,
            phonemizer=args.phonemizer,
            lexicon=args.lexicon,
            normalize=args.normalize,
            features=args.features.split(","),
            arrays=args.arrays.split(","),
        )
    finally:
        logger.removeHandler(console)
    splits = manifest.splits
    counts = ", ".join(f"{name} {s.n_trials}" for name, s in splits.items())
    skipped = ", ".join(f"{name} {s.n_skipped}" for name, s in splits.items() if s.n_skipped)
    print(
        f"prepared {len(manifest.days)} days ({counts} trials"
        f"{f'; left out: {skipped}' if skipped else ''}) in {args.out_dir}"
    )
    where = Path(args.out_dir) / MANIFEST_FILE
    check = manifest.label_check
    if check is not None:
        print(
            f"released labels against this project's phonemisation: {check.n_mismatched} "
            f"of {check.n_checked} differ (kept as released; listed under 'label_check' in "
            f"{where})"
        )
    labels = manifest.phonemizer
    if labels is not None and labels.name == "reference":
        print(
            f"reference phonemizer: words guessed by g2p_en's network: {len(labels.guessed)}, "
            f"homograph tokens labelled without a POS tag: "
            f"{sum(labels.untagged_homographs.values())} (listed under 'phonemizer' in "
            f"{where})"
        )


def cmd_import_pickle(args: argparse.Namespace) -> None:
    from brain2text.data.pickle_import import import_pickle

    manifest = import_pickle(
        args.pickle, args.out_dir, overwrite=args.overwrite, competition_days=args.competition_days
    )
    counts = ", ".join(f"{name} {s.n_trials}" for name, s in manifest.splits.items())
    print(f"imported {args.pickle} ({counts} trials) into {args.out_dir}")
