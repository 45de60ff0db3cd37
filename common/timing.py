"""Projected time: what a run or a probe will take, said after a few steps. Shared by
`sslx train` and `sslx probe`; it only measures, it never changes what a run computes."""

from __future__ import annotations

import time

# Steps whose time is measured for the projection; the first step (loader start-up,
# allocations, k-means warm-up) is left out.
MEASURED_STEPS = 5
# Epoch start-up work shorter than this is left out of the projection (noise).
OVERHEAD_SHOWN = 1.0
# A projection is said again when the measured rate moves it by more than DRIFT (of the
# time left, at least a minute), at most every REPROJECT_AFTER seconds.
DRIFT = 0.25
REPROJECT_AFTER = 30.0


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class StepTimer:
    """Projects the time per epoch and for the rest of a run from the steps after the first.

    `tick()` is called after every step; it returns the projection line once, after
    `MEASURED_STEPS` measured steps (or at the epoch's last step, if that comes first).
    `overhead` is the measured time of this epoch's work before its first step (DeepCluster's
    clustering step), assumed again for each of the `epochs_after` epochs still to come."""

    def __init__(
        self,
        steps_per_epoch: int,
        steps_left: int,
        what: str = "run",
        overhead: float = 0.0,
        epochs_after: int = 0,
    ) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.steps_left = steps_left  # steps of the whole run still to go, this one included
        self.what = what
        self.overhead = overhead if overhead >= OVERHEAD_SHOWN else 0.0
        self.epochs_after = epochs_after
        self.seen = 0
        self.started: float | None = None
        self.said: tuple[float, float] | None = None  # (when, seconds left it said)

    def tick(self) -> str | None:
        self.seen += 1
        now = time.perf_counter()
        if self.seen == 1:
            self.started = now
            return None
        measured = self.seen - 1
        per_step = (now - self.started) / measured
        left = per_step * (self.steps_left - self.seen) + self.overhead * self.epochs_after
        if self.said is None:
            if measured < MEASURED_STEPS and self.seen < min(self.steps_per_epoch, self.steps_left):
                return None
            self.said = (now, left)
            per_epoch = per_step * self.steps_per_epoch + self.overhead
            start = f" + {format_seconds(self.overhead)} before each epoch" if self.overhead else ""
            return (
                f"sslx: {per_step:.2f} s/step{start}: about {format_seconds(per_epoch)}"
                f" per epoch, {format_seconds(left)} left for the {self.what} "
                f"(measured on {measured} steps)"
            )
        # Later, the rate over every step so far: a machine that got busier (or freer) than
        # during the first steps moves the projection, and it is said again.
        when, said_left = self.said
        expected = said_left - (now - when)
        if now - when < REPROJECT_AFTER or abs(left - expected) <= DRIFT * max(expected, 60):
            return None
        self.said = (now, left)
        return (
            f"sslx: re-projected at the measured {per_step:.2f} s/step: "
            f"{format_seconds(left)} left for the {self.what} (measured on {measured} steps)"
        )
