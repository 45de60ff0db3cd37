"""torchrun integration: process group setup, device choice and small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sslx.errors import InputError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """ "auto" is CUDA when a GPU is visible, else CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA GPU is visible")
        return torch.device("cuda", local_rank)
    if requested == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {requested!r} (auto, cpu or cuda)")


def setup(device: torch.device) -> Dist:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank)


def local_rank_from_env() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather_rows(local: torch.Tensor, counts: list[int]) -> torch.Tensor | None:
    """Rank 0 gets every rank's rows, in rank order (rank r holds counts[r]); others None."""
    if not dist.is_initialized():
        return local
    padded = local.new_zeros((max(counts), *local.shape[1:]))
    padded[: len(local)] = local
    if dist.get_rank() != 0:
        dist.gather(padded, None, dst=0)
        return None
    parts = [torch.empty_like(padded) for _ in counts]
    dist.gather(padded, parts, dst=0)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])


def broadcast(values: torch.Tensor) -> torch.Tensor:
    """Rank 0's values on every rank (in place)."""
    if dist.is_initialized():
        dist.broadcast(values, src=0)
    return values
