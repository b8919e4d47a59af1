"""Pre-emption: SIGTERM (what Slurm, Kubernetes and torchrun send before killing) and SIGUSR1
(Slurm's ``--signal=USR1@90``) ask a run to stop. The training loop finishes the step it is in,
writes ``last.pt`` at that step, marks the run ``interrupted`` and returns; ``brain2text train
--resume`` continues from there exactly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None  # signal.signal's

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: the exit status of a run stopped by one of them


class StopRequest:
    """While entered, the stop signals set :attr:`signal_name` instead of killing the process
    (handlers can only be installed from the main thread; elsewhere the signals keep their
    default action)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, Handler] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame) -> None:
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
