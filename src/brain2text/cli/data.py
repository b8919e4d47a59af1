"""The parsers of the data commands: synth, prepare, import-pickle."""

from __future__ import annotations

import argparse
from pathlib import Path

from brain2text import commands
from brain2text.cli.parsing import IntermixedParser


def add_data_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``synth``, ``prepare`` and ``import-pickle`` to ``sub``."""
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
        "--sentences",
        type=Path,
        default=None,
        metavar="FILE.txt",
        help="speak these sentences (one a line, every word in the CMU dictionary) instead "
        "of the grammar's; 20%% of them, chosen by a stable hash, are test / hold-out ones",
    )
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
