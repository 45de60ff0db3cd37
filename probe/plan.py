"""What a probe run will cost, said before it is paid: the feature cache's size against
the free memory or disk (the projected time comes from `train/report.py`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sslx.errors import InputError


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


def check_cache_fits(nbytes: int, cache_dir: Path | None, why: str = "--cache-features") -> None:
    """Refuse a cache that will not fit, before hours of extraction fill it. `why` is the
    flag that asks for the cache: --cache-features, which streaming can replace, or the
    kNN and cluster evaluations, which always read the cache."""
    gb = 1e9
    stream = why == "--cache-features"
    if cache_dir is None:
        free, where = available_memory(), "memory available"
        hint = "give --cache-dir on a disk with room"
        hint += ", or drop --cache-features to stream" if stream else ""
    else:
        existing = cache_dir
        while not existing.exists():
            existing = existing.parent
        # Files of an earlier cache here are reused or overwritten in place.
        reusable = sum(p.stat().st_size for p in cache_dir.glob("*.f16"))
        free, where = shutil.disk_usage(existing).free + reusable, f"free in {cache_dir}"
        hint = "use another --cache-dir"
        hint += ", or drop --cache-features to stream" if stream else ""
    if nbytes > free:
        raise InputError(
            f"{why} needs {nbytes / gb:.1f} GB, only {free / gb:.1f} GB {where}; {hint}"
        )
