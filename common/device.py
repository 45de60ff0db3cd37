"""Where sslx computes, and how many processes feed it: the one device choice and the
loader-worker defaults of `sslx train` and `sslx probe` (torch imported on use, so that
`sslx generate` and every `--help` can read the core count without it)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sslx.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's or a job's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """ "auto" is CUDA when a GPU is visible, else CPU. Of the visible GPUs: the only one
    (a launcher that binds one GPU per task, e.g. SLURM), else LOCAL_RANK modulo their
    count (torchrun on a node whose GPUs every rank sees)."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA GPU is visible")
        count = torch.cuda.device_count()
        return torch.device("cuda", 0 if count == 1 else local_rank % count)
    if requested == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {requested!r} ({', '.join(DEVICES)})")


def default_workers(device: torch.device, local_world_size: int = 1) -> int:
    """Loader processes per rank: one keeps up with CPU training; on a GPU, every usable
    core shared by the local ranks, less one per rank for its main process (at least 1)."""
    if device.type != "cuda":
        return 1
    return max(1, usable_cores() // max(1, local_world_size) - 1)
