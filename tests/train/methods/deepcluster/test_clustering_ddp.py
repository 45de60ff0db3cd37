"""The clustering step on two CPU processes (gloo) equals the step in one process."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ddp_clustering_worker as worker_module


def test_two_ranks_compute_the_statistics_projections_and_labels_of_one(tmp_path, torchrun):
    worker = Path(__file__).with_name("ddp_clustering_worker.py")
    torchrun(worker, tmp_path, timeout=300)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    single = worker_module.run(rank=0, world_size=1)
    # The all-reduced sums give the mean and covariance of the concatenated rows.
    x = worker_module.data().double()
    torch.testing.assert_close(single["mean"], x.mean(0))
    torch.testing.assert_close(single["cov"], torch.cov(x.T, correction=0))
    for rank in ranks:
        torch.testing.assert_close(rank["mean"], single["mean"], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(rank["cov"], single["cov"], rtol=1e-12, atol=1e-12)
    # Rank 0 gathers every rank's projections, in order; the others get nothing.
    assert ranks[1]["projected"] is None and ranks[0]["projected"].shape == (worker_module.N, 16)
    torch.testing.assert_close(ranks[0]["projected"], single["projected"], rtol=0, atol=1e-6)
    for fit_rows in (0, 150):
        key = f"labels_{fit_rows}"
        assert np.array_equal(ranks[0][key], ranks[1][key])  # broadcast from rank 0
        assert np.array_equal(ranks[0][key], single[key])
        assert len(np.unique(single[key])) == 8
