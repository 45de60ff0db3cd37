"""Run by test_clustering_ddp.py under torchrun: the clustering step's pieces on 2 ranks.

Every rank builds the same clustered data, takes its stretch of the rows and saves what
the step computed: the all-reduced statistics, the gathered projections (rank 0) and the
labels, with the PCA fitted on all rows and on a random subset of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from sslx.common.kmeans import Backend
from sslx.train import distributed
from sslx.train.methods.deepcluster.clustering import (
    FeatureStats,
    HostRows,
    accumulate,
    broadcast_pca,
    cluster_step,
    project,
)

N, WIDTH, K, DIM, BATCH = 401, 48, 8, 16, 32  # 401 rows: the ranks hold 200 and 201


def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    means = torch.randn(K, WIDTH, generator=g) * 3
    labels = torch.randint(0, K, (N,), generator=g)
    return means[labels] + torch.randn(N, WIDTH, generator=g)


def counts(world_size: int) -> list[int]:
    return [(r + 1) * N // world_size - r * N // world_size for r in range(world_size)]


def run(rank: int, world_size: int) -> dict:
    """The step's pieces on this rank's rows; what the test compares."""
    cpu, sizes = torch.device("cpu"), counts(world_size)
    lo = sum(sizes[:rank])
    rows = data()[lo : lo + sizes[rank]]
    stats, store = FeatureStats(WIDTH, cpu), HostRows(len(rows), WIDTH, pin=False)
    accumulate(rows.split(BATCH), store, stats)
    mean, cov = stats.all_reduce().mean_cov()
    pca = broadcast_pca(stats.pca(DIM) if rank == 0 else None, WIDTH, DIM, cpu)
    projected = distributed.gather_rows(project(store, pca, BATCH, cpu), sizes)
    backend = Backend("torch", cpu, "test")
    out = {"mean": mean, "cov": cov, "projected": projected}
    for fit_rows in (0, 150):
        labels, _ = cluster_step(
            rows.split(BATCH),
            sizes,
            K,
            width=WIDTH,
            device=cpu,
            batch=BATCH,
            rank=rank,
            pca_dim=DIM,
            iterations=10,
            seed=3,
            backend=backend,
            pca_fit_rows=fit_rows,
        )
        out[f"labels_{fit_rows}"] = labels
    return out


def main(result_dir: str) -> None:
    dist = distributed.setup(torch.device("cpu"), timeout_minutes=5)
    try:
        out = run(dist.rank, dist.world_size)
    finally:
        distributed.teardown()
    torch.save(out, Path(result_dir) / f"rank{dist.rank}.pt")


if __name__ == "__main__":
    np.seterr(all="raise")
    main(sys.argv[1])
