"""The ``brain2text`` command line. Every subcommand turns a Brain2TextError into a one-line
``error: ...`` message and exit status 2 (:mod:`brain2text.cli.parsing`). Each stage's
subcommands are added by the module of the same name as in :mod:`brain2text.commands`."""

from __future__ import annotations

import argparse

from brain2text import __version__
from brain2text.cli.data import add_data_commands
from brain2text.cli.evaluation import add_evaluation_commands, add_lm_commands
from brain2text.cli.parsing import IntermixedParser, run_command
from brain2text.cli.reports import add_reports_commands
from brain2text.cli.training import add_sweep_commands, add_training_commands
from brain2text.cli.using import add_using_commands
from brain2text.commands import EXIT_INTERRUPTED

__all__ = ["EXIT_INTERRUPTED", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brain2text", description=__doc__.split(".")[0])
    parser.add_argument("--version", action="version", version=f"brain2text {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=IntermixedParser)
    # in the order ``brain2text --help`` lists them
    add_data_commands(sub)
    add_training_commands(sub)
    add_evaluation_commands(sub)
    add_using_commands(sub)
    add_sweep_commands(sub)
    add_reports_commands(sub)
    add_lm_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))
