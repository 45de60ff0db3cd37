"""Stopping a run cleanly: the first SIGINT/SIGTERM asks the loop to stop after the current
step, with a checkpoint (a pre-emption loses nothing); a second Ctrl-C aborts at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class StopSignal:
    """First SIGINT/SIGTERM asks the loop to stop after the current step, with a checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
        try:
            yield self
        finally:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)
