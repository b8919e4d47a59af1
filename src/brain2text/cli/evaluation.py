"""The parsers of the evaluation commands: evaluate, lm build and lm tune."""

from __future__ import annotations

import argparse
from pathlib import Path

from brain2text import commands
from brain2text.cli.parsing import (
    IntermixedParser,
    add_exclude_split,
    add_llm_rescoring,
    add_llm_scoring,
)


def add_evaluation_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``evaluate`` to ``sub``."""
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
    add_llm_rescoring(p, "; files in eval/<split>-llm/; n-best 100 unless --nbest")
    p.add_argument("--llm-batch", type=int, default=32, help="sentences per LLM batch")
    p.add_argument(
        "--llm-fusion",
        action="store_true",
        help="bring --llm into the beam search at every word instead of rescoring the n-best "
        "at the end (files in eval/<split>-fusion/; slow on a CPU)",
    )
    p.add_argument(
        "--fusion-weight",
        type=float,
        default=None,
        help="with --llm-fusion: the LLM's weight relative to the n-gram's (default 1)",
    )
    p.add_argument(
        "--merge",
        choices=["logits", "nbest", "generate"],
        default=None,
        help="how --ensemble combines its members: logits (the default: average their per-frame "
        "log-probabilities); with --lm, nbest (pool the members' n-best lists, every candidate "
        "scored by every member, the n-gram and --llm) or generate (--llm, a model from 'lm "
        "finetune --task correct', writes the sentence); files in eval/<split>-merge-<how>/ "
        "beside the logit average's eval/<split>-lm/",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="test-time adaptation: before decoding a trial, one DietCORP step on time-masked "
        "copies of it (the run's tta section: copies, steps, lr, parameters...), weights "
        "restored after each trial; files in eval/<split>-tta/ (eval/<split>-tta-lm/ with --lm)",
    )
    p.add_argument(
        "--tta-set",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="with --tta: change one of its settings, e.g. --tta-set lr=1e-4 --tta-set copies=16 "
        "(keys of the tta section; repeatable)",
    )
    p.set_defaults(func=commands.cmd_evaluate)


def add_lm_commands(sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``lm`` and its ``build`` and ``tune`` to ``sub``."""
    from brain2text.decoding.beam import DEFAULT_LM_WEIGHTS, DEFAULT_WORD_SCORES
    from brain2text.decoding.lm import DEFAULT_MIN_COUNT, DEFAULT_ORDER, DEFAULT_PRUNE
    from brain2text.evaluation.llm_tuning import (
        DEFAULT_ACOUSTIC_SCALES,
        DEFAULT_ALPHAS,
        DEFAULT_GATES,
        DEFAULT_TUNING_NBEST,
    )

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
    add_exclude_split(
        p, "the corpus, so lm tune does not pick weights on sentences the LM has memorised"
    )
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
    p.add_argument(
        "--llm",
        default=None,
        metavar="MODEL",
        help="also tune the n-best rescoring with this causal LM (smollm2-135m, a Hugging "
        "Face folder or a .gguf file), from one decoding's saved scores",
    )
    add_llm_scoring(p)
    p.add_argument(
        "--alphas",
        default=",".join(f"{v:g}" for v in DEFAULT_ALPHAS),
        help="LLM weights to try, in [0, 1] (default %(default)s)",
    )
    p.add_argument(
        "--acoustic-scales",
        default=",".join(f"{v:g}" for v in DEFAULT_ACOUSTIC_SCALES),
        help="acoustic scales to try (default %(default)s)",
    )
    p.add_argument(
        "--llm-gates",
        default=",".join("none" if v is None else f"{v:g}" for v in DEFAULT_GATES),
        help="n-gram ln score per word below which the LLM is skipped; 'none': never "
        "(default %(default)s)",
    )
    p.add_argument(
        "--nbest",
        type=int,
        default=DEFAULT_TUNING_NBEST,
        help="hypotheses per sentence the LLM rescores (default %(default)s)",
    )
    p.add_argument(
        "--first-pass-weights",
        default=None,
        metavar="W,...",
        help="with --llm: also rescore the n-best lists of these LM weights of the grid (each "
        "at its best word score) and keep the first pass the LLM does best with (default: "
        "the n-gram's own best only)",
    )
    p.set_defaults(func=commands.cmd_lm_tune)
    from brain2text.cli.lm_finetune import add_finetune_command

    add_finetune_command(lm_sub)
