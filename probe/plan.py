"""What a probe run will cost, said before it is paid: the feature cache's size against
the free memory or disk, and the projected time of the whole protocol once the first
steps are timed."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from sslx.errors import InputError

PROJECT_AFTER = 300  # steps timed before the projection (10% of an epoch on small data)


def cache_bytes(n_train: int, n_val: int, dims: dict[str, int], crops: int) -> int:
    """float16 features of every tap (val: every crop) plus int64 labels."""
    row = 2 * sum(dims.values())
    return n_train * row + n_val * crops * row + 8 * (n_train + n_val)


def available_memory() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_cache_fits(nbytes: int, cache_dir: Path | None) -> None:
    """Refuse a cache that will not fit, before hours of extraction fill it."""
    gb = 1e9
    if cache_dir is None:
        free, where = available_memory(), "memory available"
        hint = "give --cache-dir on a disk with room, or drop --cache-features to stream"
    else:
        existing = cache_dir
        while not existing.exists():
            existing = existing.parent
        # Files of an earlier cache here are reused or overwritten in place.
        reusable = sum(p.stat().st_size for p in cache_dir.glob("*.f16"))
        free, where = shutil.disk_usage(existing).free + reusable, f"free in {cache_dir}"
        hint = "use another --cache-dir, or drop --cache-features to stream"
    if nbytes > free:
        raise InputError(
            f"--cache-features needs {nbytes / gb:.1f} GB, only {free / gb:.1f} GB {where}; {hint}"
        )


class TimeProjection:
    """Times the first training steps and prints the projected time of the whole protocol
    (the remaining epochs, then evaluation at `crops` times a step per batch) once."""

    def __init__(
        self, epochs: int, steps_per_epoch: int, eval_steps: int, crops: int, enabled: bool
    ) -> None:
        self.at = min(PROJECT_AFTER, max(1, -(-steps_per_epoch // 10)))
        self.total_steps = epochs * steps_per_epoch + eval_steps * crops
        self.epochs, self.enabled = epochs, enabled
        self.count, self.t0 = 0, 0.0

    def step(self) -> None:
        self.count += 1
        if self.count == 1:  # the first step pays for worker start-up: time from its end
            self.t0 = time.perf_counter()
        elif self.count == self.at + 1 and self.enabled:
            per_step = (time.perf_counter() - self.t0) / self.at
            print(f"sslx: probe: projected {_hms(per_step * self.total_steps)} for "
                  f"{self.epochs} epoch(s) and evaluation ({per_step:.3f} s/step over "
                  f"the first {self.at} steps)", file=sys.stderr)  # fmt: skip


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
