"""Stopping a run cleanly: the first SIGINT/SIGTERM asks the loop to stop after the current
step, with a checkpoint (a pre-emption loses nothing); a second Ctrl-C aborts at once."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

ACKNOWLEDGED = "stopping after this step, with a checkpoint; press Ctrl-C again to abort, losing it"


class StopRequested(Exception):
    """Raised by a long epoch hook (DeepCluster's clustering step) that gives up its work at a
    stop request; the loop then saves the state as of the epoch's start and stops."""


class StopSignal:
    """First SIGINT/SIGTERM asks the loop to stop after the current step, with a checkpoint;
    it is acknowledged at once (`announce`: the main rank), since a step may take minutes."""

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce
        self.previous: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            name = "SIGTERM: " if signum == signal.SIGTERM else ""
            print(f"\nsslx: {name}{ACKNOWLEDGED}", file=sys.stderr, flush=True)

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
