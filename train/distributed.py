"""torchrun integration: process group setup, device choice and small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# How long a collective may wait before the job fails. NCCL's default, 10 minutes, is
# shorter than rank 0's DeepCluster step at full scale can take while the other ranks
# wait in the labels' broadcast (k-means of 1.28M x 256 into 10,000 clusters on FAISS's
# CPU path, with slow loaders or a busy host); 2 hours covers it with a wide margin, and
# a job that truly hangs still fails, after 2 hours instead of 10 minutes.
DEFAULT_TIMEOUT_MINUTES = 120.0


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


def setup(device: torch.device, timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES) -> Dist:
    """Join the process group that torchrun describes in the environment, if any; a
    collective that waits longer than `timeout_minutes` fails the job."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    options = {"backend": "gloo", "timeout": timedelta(minutes=timeout_minutes)}
    if device.type == "cuda":
        # Bound at init, NCCL creates its communicator on this GPU and every barrier uses
        # it; unbound, its first barrier guesses a device from the rank.
        torch.cuda.set_device(device)
        options |= {"backend": "nccl", "device_id": device}
    if not dist.is_initialized():
        dist.init_process_group(**options)
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank)


def local_rank_from_env() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def local_world_size_from_env() -> int:
    """Ranks on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without a launcher)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


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
    most = max(counts)
    padded = (
        local
        if len(local) == most
        else torch.cat([local, local.new_zeros((most - len(local), *local.shape[1:]))])
    )
    if dist.get_rank() != 0:
        dist.gather(padded, None, dst=0)
        return None
    # Received straight into one buffer; cut only when the ranks' counts differ.
    out = local.new_empty((len(counts), *padded.shape))
    dist.gather(padded, list(out.unbind(0)), dst=0)
    if all(c == most for c in counts):
        return out.flatten(0, 1)
    return torch.cat([p[:c] for p, c in zip(out, counts, strict=True)])


def broadcast(values: torch.Tensor) -> torch.Tensor:
    """Rank 0's values on every rank (in place)."""
    if dist.is_initialized():
        dist.broadcast(values, src=0)
    return values
