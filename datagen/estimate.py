"""`sslx generate`'s forecast before it starts: the size on disk and the time, from a few
patches rendered and encoded here, and a refusal when the disk has no room for them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from sslx.errors import InputError

SAMPLED = 9  # patches rendered for the forecast; the first pays for warm-up and is not timed
RATE_AFTER = 20.0  # seconds of writing before the measured rate is said
TAR_BLOCK = 512
SHARD_OVERHEAD = 10240  # a tar's end-of-archive blocks, padded to a record
MARGIN = 1.05  # of the forecast size, plus FREE_SPACE_FLOOR, must be free
FREE_SPACE_FLOOR = 256 * 2**20


@dataclass(frozen=True)
class Forecast:
    patches: int
    bytes: int
    seconds: float


def _tar_bytes(payloads: Sequence[bytes]) -> int:
    """A sample's size in a tar shard: a header block per member, data padded to blocks."""
    return sum(TAR_BLOCK + -(-len(p) // TAR_BLOCK) * TAR_BLOCK for p in payloads)


def forecast(
    render: Callable[[int], tuple[str, bytes, bytes]], patches: int, shards: int, workers: int
) -> Forecast:
    """Size and time of writing `patches` patches in `shards` shards on `workers` processes,
    from rendering the first few (one OpenCV thread, as in a worker)."""
    sampled = min(SAMPLED, patches)
    if sampled == 0:
        return Forecast(0, 0, 0.0)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        sizes, times = [], []
        for i in range(sampled):
            t0 = time.perf_counter()
            _, jpg, meta = render(i)
            times.append(time.perf_counter() - t0)
            sizes.append(_tar_bytes([jpg, meta]))
    finally:
        cv2.setNumThreads(threads)
    per_patch = sum(times[1:]) / (sampled - 1) if sampled > 1 else times[0]
    size = patches * sum(sizes) / sampled + shards * SHARD_OVERHEAD
    parallel = max(1, min(workers, shards))
    return Forecast(patches, int(size), patches * per_patch / parallel)


class MeasuredRate:
    """The forecast checked against the work itself: once, after `after` seconds of writing,
    the measured rate and the time left (a busy machine or a slow disk shows here)."""

    def __init__(self, total: int, forecast_seconds: float, after: float = RATE_AFTER) -> None:
        self.total, self.forecast_seconds, self.after = total, forecast_seconds, after
        self.started = time.perf_counter()
        self.said = False

    def update(self, done: int) -> str | None:
        elapsed = time.perf_counter() - self.started
        if self.said or done <= 0 or done >= self.total or elapsed < self.after:
            return None
        self.said = True
        rate = done / elapsed
        return (
            f"sslx: measured {rate:,.0f} patches/s: about {_duration((self.total - done) / rate)}"
            f" left (the forecast said {_duration(self.forecast_seconds)} in all)"
        )


def check_disk(out: Path, need: int) -> None:
    """Refuse (one line) when the file system of `out` cannot hold `need` bytes and a margin."""
    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need * MARGIN + FREE_SPACE_FLOOR:
        raise InputError(
            f"not enough disk space for {out}: about {_gb(need)} needed, {_gb(free)} free; "
            "lower --n or --size, or choose another --out"
        )


def forecast_line(f: Forecast, size: int, workers: int) -> str:
    return (
        f"sslx: {f.patches} patches of {size} px: about {_gb(f.bytes)}, about "
        f"{_duration(f.seconds)} on {workers} worker(s) (measured on {SAMPLED} patches)"
    )


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
