"""Where sslx computes, and how many processes feed it: the one device choice and the
loader-worker defaults of `sslx train` and `sslx probe` (torch imported on use, so that
`sslx generate` and every `--help` can read the core count without it)."""

from __future__ import annotations

import os
import shutil
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


def pick_device(requested: str, local_rank: int = 0, local_world_size: int = 1) -> torch.device:
    """ "auto" is CUDA when a GPU is visible, else CPU. Of the visible GPUs: the only one
    (a launcher that binds one GPU per task, e.g. SLURM), else the LOCAL_RANK-th (torchrun
    on a node whose GPUs every rank sees). Two ranks never share a GPU: NCCL refuses that
    ("Duplicate GPU"), so more local ranks than GPUs is refused here, in one line."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA GPU is visible")
        count = torch.cuda.device_count()
        ranks = max(local_world_size, local_rank + 1 if count > 1 else 1)
        if ranks > count:
            raise InputError(
                f"{ranks} ranks on this machine but {count} visible GPU(s): start at most "
                f"{count} per node (torchrun --nproc-per-node {count})"
            )
        return torch.device("cuda", 0 if count == 1 else local_rank)
    if requested == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {requested!r} ({', '.join(DEVICES)})")


def default_workers(device: torch.device, local_world_size: int = 1) -> int:
    """Loader processes per rank: one keeps up with CPU training; on a GPU, every usable
    core shared by the local ranks, less one per rank for its main process (at least 1)."""
    if device.type != "cuda":
        return 1
    return max(1, usable_cores() // max(1, local_world_size) - 1)


PREFETCH_BATCHES = 4  # batches each loader worker keeps ready (DataLoader's prefetch_factor)


def check_shared_memory(
    workers: int, batch_bytes: int, local_ranks: int = 1, shm: str = "/dev/shm"
) -> None:
    """Refuse, in one line, a loader that would outgrow shared memory: its workers hand
    batches over in /dev/shm, and when that fills, a DataLoader bus error is the only sign
    (a container's default is 64 MB). Every local rank's workers share it."""
    if workers == 0 or not os.path.isdir(shm):
        return
    need = local_ranks * workers * PREFETCH_BATCHES * batch_bytes
    free = shutil.disk_usage(shm).free
    if need > free:
        raise InputError(
            f"the loader needs about {need / 1e9:.2f} GB of shared memory ({local_ranks} "
            f"rank(s) x {workers} workers x {PREFETCH_BATCHES} batches x "
            f"{batch_bytes / 1e6:.1f} MB) but {shm} has {free / 1e9:.2f} GB free; "
            "lower --workers or --batch-size, or enlarge it (docker run --shm-size)"
        )
