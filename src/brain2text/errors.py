"""Errors meant for people: each carries a one-line message naming the file, trial or setting.

The CLI prints ``error: <message>`` and exits with status 2 for any of these; anything else is a
bug and keeps its traceback.
"""


class Brain2TextError(Exception):
    """Base class of every error the CLI reports as a one-line message."""


class DataError(Brain2TextError):
    """A recording file, trial or prepared dataset is missing, malformed or unusable."""


class ConfigError(Brain2TextError):
    """A run file or override names an unknown key or holds a bad value."""


class TrainingError(Brain2TextError):
    """Training cannot go on (e.g. too many non-finite steps in a row)."""


class StorageError(Brain2TextError):
    """A file could not be written (disk full, no permission); the previous file is kept."""
