"""The parsers of the commands that use a trained run: decode, adapt, stream, export."""

from __future__ import annotations

import argparse
from pathlib import Path

from brain2text import commands
from brain2text.cli.parsing import IntermixedParser, add_llm_rescoring


def add_using_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``decode``, ``adapt``, ``stream`` and ``export`` to ``sub``."""
    p = sub.add_parser(
        "decode",
        help="decode a raw recording (a .mat day file, a B2T'25 "
        "split file or session folder) with a trained run",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("recording", type=Path)
    p.add_argument("--lm", type=Path, default=None, help="LM folder (brain2text lm build): words")
    add_llm_rescoring(p)
    p.add_argument("--nbest", type=int, default=None, help="n-best rescored (default 100)")
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
        help="fit a new recording day's input layer alone on its labelled sentences (or, "
        "--unlabelled, on its confident LM decodings); a new run folder that knows the day",
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
        help="adapt.steps=N adapt.lr=X adapt.batch_size=N adapt.held_out_fraction=F "
        "adapt.pseudo_gate=G",
    )
    p.add_argument("--day", required=True, help="the new day's session name")
    p.add_argument(
        "--unlabelled",
        action="store_true",
        help="no sentences needed: label the trials whose --lm decoding passes "
        "adapt.pseudo_gate (n-gram ln score per word, default -2.5) with it and fit on those; "
        "PER before and after on any labelled trials",
    )
    p.add_argument(
        "--lm",
        type=Path,
        default=None,
        metavar="LM_DIR",
        help="with --unlabelled: the LM folder (brain2text lm build) that decodes the trials",
    )
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
