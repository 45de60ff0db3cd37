"""DeepCluster's clustering step: PCA-whitening, L2 normalisation and k-means.

As in Caron et al. (2018): the features are reduced to 256 dimensions by PCA with
eigen_power -0.5 (each component divided by the square root of its variance, which
is what FAISS's `PCAMatrix(d, 256, eigen_power=-0.5)` computes), L2-normalised, and
clustered by k-means with 20 iterations, no subsampling and a seed that changes per
epoch.

The PCA is computed here in torch rather than with `faiss.PCAMatrix`: the same
projection (mean, covariance, top eigenvectors scaled by eigenvalue^-0.5), but it runs
on the GPU where FAISS has none, and on a CPU it is far faster (FAISS's PCAMatrix took
115 s to train on 20,000 x 4096 features on the 2-core development VM). One difference
of scale only: FAISS takes the eigenvalues of the scatter matrix, sum (x - mean)^2,
so its outputs have variance 1/n; ours divide by n and have unit variance. The L2
normalisation that follows removes that factor (the tests compare the two after it).
Above 1024 dimensions on a CPU the top eigenvectors come from subspace iteration
(12 rounds with 1.5x as many vectors as kept, then Rayleigh-Ritz), which the tests
check against an exact eigendecomposition.

k-means has two backends with the same interface and seeding semantics:

- `faiss`: `faiss.Clustering` on a flat L2 index, on the GPU when `faiss.get_num_gpus()`
  is positive;
- `torch`: the same algorithm in torch on any device, for machines with CUDA torch but
  no GPU build of FAISS: k distinct random points as initial centroids, Lloyd
  iterations, and FAISS's treatment of empty clusters (a non-empty cluster, picked with
  probability proportional to its size - 1, is split in two by a small symmetric
  perturbation of its centroid).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from sslx.errors import InputError

BACKENDS = ("auto", "faiss", "torch")
_SPLIT_EPS = 1 / 1024  # FAISS's perturbation when splitting a cluster


@dataclass(frozen=True)
class PCA:
    """x -> (x - mean) @ projection: whitened principal components."""

    mean: torch.Tensor  # (d,)
    projection: torch.Tensor  # (d, dim), eigenvectors / sqrt(eigenvalues)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.projection


@dataclass(frozen=True)
class ClusterResult:
    assignments: np.ndarray  # (N,) int64 cluster of every sample
    objective: float  # sum of squared distances to the assigned centroids
    backend: str
    seconds_pca: float
    seconds_kmeans: float


def fit_pca(x: torch.Tensor, dim: int, fit_rows: int = 0, seed: int = 0) -> PCA:
    """PCA-whitening to `dim` components, fitted on all rows (or `fit_rows` random ones)."""
    if 0 < fit_rows < len(x):
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:fit_rows]
        x = x[pick.to(x.device)]
    dim = min(dim, x.shape[1], len(x) - 1)
    mean = x.mean(0, dtype=torch.float64)
    cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    for chunk in x.split(16384):
        centred = chunk - mean.float()
        cov += (centred.T @ centred).double()
    values, vectors = top_eigen(cov / len(x), dim)
    projection = vectors * values.clamp_min(1e-12).rsqrt()
    return PCA(mean.float(), projection.float())


def top_eigen(cov: torch.Tensor, dim: int, rounds: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """The `dim` largest eigenvalues (descending) and eigenvectors of a covariance."""
    d = cov.shape[0]
    if d <= 1024 or cov.is_cuda or dim * 3 // 2 >= d:
        values, vectors = torch.linalg.eigh(cov)
        return values.flip(0)[:dim], vectors.flip(1)[:, :dim]
    # Subspace iteration in float32 (an exact float32 eigh of 4096x4096 takes ~6 s on 2 cores).
    c = cov.float()
    g = torch.Generator(device=c.device).manual_seed(0)
    q = torch.randn(d, dim * 3 // 2, generator=g, device=c.device)
    for _ in range(rounds):
        q = torch.linalg.qr(c @ q).Q
    values, small = torch.linalg.eigh(q.T @ c @ q)  # Rayleigh-Ritz
    return values.flip(0)[:dim].double(), (q @ small).flip(1)[:, :dim].double()


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def resolve_backend(name: str, device: torch.device) -> str:
    """auto: FAISS on its GPUs; torch on a CUDA device FAISS cannot use; else FAISS on CPU."""
    if name not in BACKENDS:
        raise InputError(f"unknown k-means backend {name!r} (known: {', '.join(BACKENDS)})")
    faiss = _faiss()
    if name == "faiss" and faiss is None:
        raise InputError("--kmeans-backend faiss was asked for, but faiss is not installed")
    if name != "auto":
        return name
    if faiss is not None and (faiss.get_num_gpus() > 0 or device.type != "cuda"):
        return "faiss"
    return "torch"


def cluster(
    features: torch.Tensor,
    k: int,
    *,
    pca_dim: int = 256,
    iterations: int = 20,
    seed: int = 0,
    backend: str = "auto",
    pca_fit_rows: int = 0,
) -> ClusterResult:
    """DeepCluster's step: PCA-whiten, L2-normalise, k-means; assign every row."""
    backend = resolve_backend(backend, features.device)
    t0 = time.perf_counter()
    pca = fit_pca(features, pca_dim, pca_fit_rows, seed)
    x = l2_normalise(torch.cat([pca.apply(c) for c in features.split(16384)]))
    t1 = time.perf_counter()
    if backend == "faiss":
        assignments, objective = kmeans_faiss(x.cpu().numpy(), k, iterations, seed)
    else:
        assignments, objective = kmeans_torch(x, k, iterations, seed)
    t2 = time.perf_counter()
    return ClusterResult(assignments, objective, backend, t1 - t0, t2 - t1)


def kmeans_faiss(x: np.ndarray, k: int, iterations: int, seed: int) -> tuple[np.ndarray, float]:
    faiss = _faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    clus = faiss.Clustering(x.shape[1], k)
    clus.niter = iterations
    clus.seed = seed
    clus.max_points_per_centroid = 10_000_000  # no subsampling, as DeepCluster
    clus.min_points_per_centroid = 1  # small data is refused earlier; no FAISS warning
    if faiss.get_num_gpus() > 0:
        config = faiss.GpuIndexFlatConfig()
        config.useFloat16 = False
        index = faiss.GpuIndexFlatL2(faiss.StandardGpuResources(), x.shape[1], config)
    else:
        index = faiss.IndexFlatL2(x.shape[1])
    clus.train(x, index)
    distances, assign = index.search(x, 1)
    return assign[:, 0].astype(np.int64), float(distances.sum(dtype=np.float64))


def kmeans_torch(x: torch.Tensor, k: int, iterations: int, seed: int) -> tuple[np.ndarray, float]:
    """Lloyd's k-means as FAISS runs it, in torch on x's device."""
    n = len(x)
    x = x.float().contiguous()
    start = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]
    centroids = x[start.to(x.device)].clone()
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        assign, _ = nearest(x, centroids)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].float()
        split_empty(centroids, counts.cpu().numpy().astype(np.float64), rng)
    assign, distances = nearest(x, centroids)
    return assign.cpu().numpy(), float(distances.double().sum())


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of and squared distance to the nearest centroid, in chunks of rows."""
    rows = max(1, 2**26 // centroids.shape[0])
    c_sq = (centroids * centroids).sum(1)
    assign, dist = [], []
    for chunk in x.split(rows):
        d2 = (chunk * chunk).sum(1, keepdim=True) - 2 * chunk @ centroids.T + c_sq
        best, idx = d2.min(1)
        assign.append(idx)
        dist.append(best.clamp_min(0))
    return torch.cat(assign), torch.cat(dist)


def split_empty(centroids: torch.Tensor, counts: np.ndarray, rng: np.random.Generator) -> int:
    """FAISS's rule: each empty centroid becomes a perturbed copy of a non-empty one."""
    empty = np.flatnonzero(counts == 0)
    if len(empty) == 0:
        return 0
    d = centroids.shape[1]
    sign = torch.ones(d, device=centroids.device)
    sign[1::2] = -1  # even dimensions up, odd down (and the other way for the donor)
    for ci in empty:
        weights = np.maximum(counts - 1, 0)
        if weights.sum() == 0:  # nothing left to split (k close to N)
            break
        cj = int(rng.choice(len(counts), p=weights / weights.sum()))
        centroids[ci] = centroids[cj] * (1 + _SPLIT_EPS * sign)
        centroids[cj] = centroids[cj] * (1 - _SPLIT_EPS * sign)
        counts[ci] = counts[cj] / 2
        counts[cj] -= counts[ci]
    return len(empty)


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss
