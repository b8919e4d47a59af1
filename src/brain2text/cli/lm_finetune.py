"""The parser of ``brain2text lm finetune``."""

from __future__ import annotations

import argparse
from pathlib import Path

from brain2text.cli.parsing import IntermixedParser, add_exclude_split
from brain2text.commands.lm_finetune import cmd_lm_finetune


def add_finetune_command(lm_sub: argparse._SubParsersAction[IntermixedParser]) -> None:
    """Add ``finetune`` to the ``lm`` subcommands."""
    from brain2text.decoding.llm_finetune import ALL_LINEAR, FinetuneOptions

    d = FinetuneOptions()
    p = lm_sub.add_parser(
        "finetune",
        help="adapt a causal LM (LoRA) to the domain's sentences -> a folder --llm takes",
    )
    p.add_argument(
        "--llm",
        required=True,
        metavar="BASE",
        help="the model to adapt: a Hugging Face folder, a .gguf file or a packaged name",
    )
    p.add_argument(
        "--task",
        default="sentences",
        choices=["sentences", "correct"],
        help="sentences: learn the corpus's sentences (for rescoring and fusion); correct: "
        "write the sentence from an ensemble's candidates and phonemes (for --merge generate)",
    )
    p.add_argument(
        "--corpus",
        type=Path,
        default=None,
        metavar="FILE.txt",
        help="--task sentences: one sentence a line, the training transcripts only",
    )
    add_exclude_split(
        p,
        "--corpus (--task sentences), so that lm tune does not choose weights on "
        "sentences the LLM has learnt",
    )
    p.add_argument(
        "--runs",
        type=Path,
        nargs="+",
        default=None,
        metavar="RUN",
        help="--task correct: the ensemble's members, whose decodings of the train and val "
        "splits make the examples",
    )
    p.add_argument(
        "--lm",
        type=Path,
        default=None,
        metavar="LM_DIR",
        help="--task correct: the LM folder the members decode words with",
    )
    p.add_argument("--out", type=Path, required=True, metavar="LLM_DIR")
    p.add_argument(
        "--epochs", type=int, default=None, help=f"passes over the examples (default {d.epochs})"
    )
    p.add_argument(
        "--max-steps", type=int, default=None, help="the number of steps instead of --epochs"
    )
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default {d.lr:g})")
    p.add_argument("--rank", type=int, default=None, help=f"LoRA rank (default {d.rank})")
    p.add_argument(
        "--lora-alpha", type=int, default=None, help=f"LoRA alpha (default {d.lora_alpha})"
    )
    p.add_argument(
        "--dropout", type=float, default=None, help=f"LoRA dropout (default {d.dropout:g})"
    )
    p.add_argument(
        "--target-modules",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"layers to adapt (default {' '.join(d.target_modules)}; {ALL_LINEAR}: every "
        "linear layer but the output head)",
    )
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help=f"steps of linear learning-rate warm-up (default {d.warmup_steps})",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help=f"examples a step (default {d.batch_size})"
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="share of the sentences held out for the validation perplexity, chosen by hash "
        f"(default {d.val_fraction:g})",
    )
    p.add_argument("--seed", type=int, default=None, help=f"(default {d.seed})")
    p.add_argument(
        "--save-every",
        type=int,
        default=None,
        metavar="N",
        help=f"save the resume state (LLM_DIR.partial/) every N steps (default {d.save_every})",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the fine-tuning saved in LLM_DIR.partial/ (same base, data and options; "
        "--epochs or --max-steps may grow)",
    )
    p.add_argument(
        "--end",
        default=None,
        metavar="TEXT",
        help="--task sentences: train every sentence followed by this end ('.' or eos), the "
        "--llm-end the model will score with (default: none)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace LLM_DIR and its saved state")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_lm_finetune)
