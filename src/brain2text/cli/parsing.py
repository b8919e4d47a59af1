"""How the ``brain2text`` command line parses a subcommand's arguments, and how it runs the
subcommand: a Brain2TextError becomes a one-line ``error: ...`` message and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar, overload

from brain2text import commands
from brain2text.errors import Brain2TextError, ConfigError

__all__ = [
    "IntermixedParser",
    "add_exclude_split",
    "add_llm_rescoring",
    "add_llm_scoring",
    "run_command",
]

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


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed subcommand ``args.func`` and return the exit status."""
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


def add_llm_rescoring(p: argparse.ArgumentParser, more: str = "") -> None:
    """``--llm`` and the n-best rescoring's options (``evaluate``, ``decode``): ``more`` ends
    the help of ``--llm``."""
    p.add_argument(
        "--llm",
        default=None,
        metavar="MODEL",
        help="rescore --lm's n-best with this causal LM (a Hugging Face folder, a .gguf file or "
        f"smollm2-135m): acoustic_scale*am + (1-alpha)*ngram + alpha*llm{more}",
    )
    add_llm_scoring(p)
    p.add_argument("--alpha", type=float, default=None, help="the LLM's share, 0-1 (default 0.5)")
    p.add_argument("--acoustic-scale", type=float, default=None, help="scales am (default 0.5)")
    p.add_argument(
        "--llm-gate",
        type=float,
        default=None,
        help="no LLM for a trial whose best n-gram ln score per word is below this",
    )


def add_llm_scoring(p: argparse.ArgumentParser) -> None:
    """How ``--llm`` scores a sentence (``evaluate``, ``decode``, ``lm tune``)."""
    p.add_argument(
        "--llm-end",
        default=None,
        metavar="TEXT",
        help="score every sentence followed by this end ('.', or eos for the tokenizer's end "
        "token), so unfinished sentences pay for their missing end (default: no end term, as "
        "the baselines); tune and evaluate with the same end",
    )
    p.add_argument(
        "--llm-dtype",
        default=None,
        choices=["fp32", "bf16", "fp16"],
        help="the LLM's weights (default: bf16 or fp16 on a GPU, fp32 on the CPU; bf16 is "
        "faster on CPUs with native bf16)",
    )


def add_exclude_split(p: argparse.ArgumentParser, what: str) -> None:
    """``--exclude-split``, ``--run`` and ``--data`` (``lm build``, ``lm finetune``): a run's
    validation (or test) sentences dropped from a corpus; ``what`` ends the first help."""
    p.add_argument(
        "--exclude-split",
        choices=["val", "test"],
        default=None,
        help=f"drop the sentences of --run's validation (or test) split from {what}",
    )
    p.add_argument(
        "--run",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="the run whose split --exclude-split names (its config carves the validation split)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="prepared dataset of --exclude-split (default: the run's data.path)",
    )
