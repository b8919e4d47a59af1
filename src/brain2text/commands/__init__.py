"""What each ``brain2text`` subcommand does, one function a command, by stage (``cli`` parses
the arguments and reports errors). Heavy imports happen inside the functions, so that a
command loads only what it uses."""

from brain2text.commands.data import cmd_import_pickle, cmd_prepare, cmd_synth
from brain2text.commands.evaluation import (
    cmd_evaluate,
    cmd_lm_build,
    cmd_lm_tune,
)
from brain2text.commands.reports import cmd_compare, cmd_demo, cmd_report, cmd_runs
from brain2text.commands.training import cmd_config, cmd_lr_find, cmd_sweep, cmd_train
from brain2text.commands.using import cmd_adapt, cmd_decode, cmd_export, cmd_stream
from brain2text.training.interrupt import EXIT_INTERRUPTED

__all__ = [
    "EXIT_INTERRUPTED",
    "cmd_adapt",
    "cmd_compare",
    "cmd_config",
    "cmd_decode",
    "cmd_demo",
    "cmd_evaluate",
    "cmd_export",
    "cmd_import_pickle",
    "cmd_lm_build",
    "cmd_lm_tune",
    "cmd_lr_find",
    "cmd_prepare",
    "cmd_report",
    "cmd_runs",
    "cmd_stream",
    "cmd_sweep",
    "cmd_synth",
    "cmd_train",
]
