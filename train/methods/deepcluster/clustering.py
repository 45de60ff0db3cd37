"""DeepCluster's clustering step: PCA-whitening, L2 normalisation and k-means, streamed.

As in Caron et al. (2018): the features are reduced to 256 dimensions by PCA with
eigen_power -0.5 (each component divided by the square root of its variance, which
is what FAISS's `PCAMatrix(d, 256, eigen_power=-0.5)` computes), L2-normalised, and
clustered by k-means with 20 iterations, no subsampling and a seed that changes per
epoch (`sslx.common.kmeans`, which also chooses the backend).

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

Memory. At the paper's scale (N = 1,281,167, d = 4096) the features alone are 21 GB in
float32, so no device ever holds them all (`cluster_step`):

1. while the network embeds a rank's rows batch by batch, each batch is added to float64
   sums on the device (`FeatureStats`: count, sum x, sum x x^T) and kept in host memory
   as row-scaled float16 (`HostRows`, pinned on CUDA);
2. the sums are all-reduced over ranks; rank 0 takes the top eigenvectors of the
   covariance and broadcasts the whitening projection;
3. each rank projects its own rows in batches and L2-normalises them; rank 0 gathers
   the N x 256 result (1.3 GB), runs k-means and broadcasts the labels.

Arithmetic. The feature pass runs in the training step's arithmetic (bf16 autocast on
CUDA, fp32 on CPU). The sums stay float64: at full size they cost about 43 TFLOP per
epoch, about a second on an H200 but 40 s or more on GPUs with slow float64, a few
percent of such an epoch, kept because sum x x^T - n mean mean^T cancels. Projection
and k-means run without TF32 (`precision.exact_matmul`), and the pinned host store is
handed back after each step (`release_pinned_cache`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sslx.common.kmeans import (
    Backend,
    kmeans_input,
    resolve_backend,
    run_kmeans,
)
from sslx.errors import InputError
from sslx.train import distributed
from sslx.train.precision import exact_matmul


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
    backend: Backend
    seconds_features: float  # the batches: embedding, statistics, copy to the host
    seconds_pca: float  # all-reduce, eigenvectors, projection, gather
    seconds_kmeans: float  # k-means and the final assignment


class FeatureStats:
    """Streaming float64 sums of the rows seen: count, sum x and sum x x^T (d x d)."""

    def __init__(self, width: int, device: torch.device) -> None:
        self.count = torch.zeros((), dtype=torch.float64, device=device)
        self.sum = torch.zeros(width, dtype=torch.float64, device=device)
        self.outer = torch.zeros(width, width, dtype=torch.float64, device=device)

    def add(self, x: torch.Tensor) -> None:
        x = x.double()
        self.count += len(x)
        self.sum += x.sum(0)
        self.outer.addmm_(x.T, x)

    def all_reduce(self) -> FeatureStats:
        """Sum over ranks, in place (a no-op in one process)."""
        for t in (self.count, self.sum, self.outer):
            distributed.all_reduce_sum(t)
        return self

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.count.item()
        mean = self.sum / n
        return mean, self.outer / n - torch.outer(mean, mean)

    def pca(self, dim: int) -> PCA:
        """PCA-whitening to `dim` components (fewer if there are not enough rows)."""
        mean, cov = self.mean_cov()
        if not bool(torch.isfinite(cov).all()):
            raise InputError("the network's features are not finite; DeepCluster cannot cluster")
        values, vectors = top_eigen(cov, pca_width(dim, len(mean), int(self.count.item())))
        projection = (vectors * values.clamp_min(1e-12).rsqrt()).float()
        return PCA(mean.float(), projection.contiguous())  # eigh's are column-major


def pca_width(dim: int, width: int, rows: int) -> int:
    return max(1, min(dim, width, rows - 1))


class HostRows:
    """A rank's features in host memory as float16, each row scaled to max |x| = 1, so that
    no value overflows and every one keeps float16's 11 significant bits. Stored in blocks
    of 64 MB: torch rounds each pinned allocation up to a power of two, which for one
    10.5 GB buffer would pin 16 GB."""

    BLOCK_BYTES = 2**26

    def __init__(self, rows: int, width: int, pin: bool) -> None:
        self.block = max(1, self.BLOCK_BYTES // (2 * width))  # rows per block
        self.length = rows
        self.blocks = [
            (
                torch.empty(min(self.block, rows - a), width, dtype=torch.float16, pin_memory=pin),
                torch.empty(min(self.block, rows - a), 1, dtype=torch.float32, pin_memory=pin),
            )
            for a in range(0, rows, self.block)
        ]

    def __len__(self) -> int:
        return self.length

    def _spans(self, start: int, stop: int):
        """(block, first row in it, last row + 1, offset into the requested rows)."""
        for j in range(start // self.block, (stop - 1) // self.block + 1):
            lo, hi = max(start, j * self.block), min(stop, (j + 1) * self.block)
            yield self.blocks[j], lo - j * self.block, hi - j * self.block, lo - start

    def put(self, start: int, x: torch.Tensor) -> None:
        scale = x.abs().amax(1, keepdim=True).clamp_min(1e-30)
        half = (x / scale).half()
        for (rows, scales), a, b, at in self._spans(start, start + len(x)):
            rows[a:b].copy_(half[at : at + b - a], non_blocking=True)
            scales[a:b].copy_(scale[at : at + b - a], non_blocking=True)

    def get(self, start: int, stop: int, device: torch.device) -> torch.Tensor:
        parts = [
            rows[a:b].to(device, non_blocking=True).float()
            * scales[a:b].to(device, non_blocking=True)
            for (rows, scales), a, b, _ in self._spans(start, stop)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def release_pinned_cache() -> None:
    """Hand the freed pinned blocks back to the OS: torch's host allocator keeps them for
    reuse, which would hold the whole feature store (10.5 GB at 1.28M x 4096) in pinned
    memory between clustering steps."""
    if torch.cuda.is_initialized() and hasattr(torch._C, "_host_emptyCache"):
        torch._C._host_emptyCache()


def fit_mask(n: int, fit_rows: int, seed: int) -> torch.Tensor | None:
    """Which of the n samples the PCA is fitted on: `fit_rows` random ones, or all (None)."""
    if not 0 < fit_rows < n:
        return None
    keep = torch.zeros(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:fit_rows]] = True
    return keep


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


def accumulate(
    batches: Iterable[torch.Tensor], store: HostRows, stats: FeatureStats, keep=None
) -> None:
    """Add this rank's batches (in row order) to the statistics and the host store; `keep`
    (this rank's rows) limits the statistics to the PCA's fitting rows."""
    start = 0
    for x in batches:
        stats.add(x if keep is None else x[keep[start : start + len(x)].to(x.device)])
        store.put(start, x)
        start += len(x)
    if start != len(store):
        raise RuntimeError(f"{start} rows were embedded where {len(store)} were expected")


def project(store: HostRows, pca: PCA, batch: int, device: torch.device) -> torch.Tensor:
    """The stored rows whitened and L2-normalised, `batch` rows at a time: (rows, dim)."""
    out = torch.empty(len(store), pca.projection.shape[1], device=device)
    for a in range(0, len(store), batch):
        b = min(a + batch, len(store))
        out[a:b] = l2_normalise(pca.apply(store.get(a, b, device)))
    return out


def broadcast_pca(pca: PCA | None, width: int, dim: int, device: torch.device) -> PCA:
    """Rank 0's PCA on every rank (the eigenvectors are computed once); the collectives
    send the storage as it lies, so the layout must be row-major on every rank."""
    if pca is None:
        pca = PCA(torch.empty(width, device=device), torch.empty(width, dim, device=device))
    distributed.broadcast(pca.mean)
    distributed.broadcast(pca.projection)
    return pca


def cluster_step(
    batches: Iterable[torch.Tensor],
    counts: Sequence[int],
    k: int,
    *,
    width: int,
    device: torch.device,
    batch: int,
    rank: int = 0,
    pca_dim: int = 256,
    iterations: int = 20,
    seed: int = 0,
    backend: Backend | None = None,
    pca_fit_rows: int = 0,
) -> tuple[np.ndarray, ClusterResult | None]:
    """DeepCluster's step over ranks: this rank's `batches` of (rows, width) features, in
    order (rank r holds counts[r] rows, rank 0 the first). Returns every sample's
    cluster on every rank, and on rank 0 the result with its backend and timings
    (`backend` is needed on rank 0 only)."""
    t0 = time.perf_counter()
    n = sum(counts)
    keep = fit_mask(n, pca_fit_rows, seed)
    if keep is not None:
        keep = keep[sum(counts[:rank]) : sum(counts[: rank + 1])]
    store = HostRows(counts[rank], width, pin=device.type == "cuda")
    stats = FeatureStats(width, device)
    accumulate(batches, store, stats, keep)
    t1 = time.perf_counter()
    stats.all_reduce()
    dim = pca_width(pca_dim, width, int(stats.count.item()))
    pca = broadcast_pca(stats.pca(dim) if rank == 0 else None, width, dim, device)
    del stats  # its d x d sums are no longer needed
    with exact_matmul():  # no TF32 in the projection: it sets which centroid is nearest
        features = distributed.gather_rows(project(store, pca, batch, device), list(counts))
    del store
    release_pinned_cache()
    t2 = time.perf_counter()
    labels = torch.zeros(n, dtype=torch.int64, device=device)
    result = None
    if rank == 0:
        backend = backend or resolve_backend("auto", device)
        features = kmeans_input(backend, features)
        with exact_matmul():
            assignments, objective = run_kmeans(backend, features, k, iterations, seed)
        labels.copy_(torch.from_numpy(assignments))
        result = ClusterResult(
            assignments, objective, backend, t1 - t0, t2 - t1, time.perf_counter() - t2
        )
    return distributed.broadcast(labels).cpu().numpy(), result


def cluster(
    features: torch.Tensor,
    k: int,
    *,
    pca_dim: int = 256,
    iterations: int = 20,
    seed: int = 0,
    backend: str = "auto",
    pca_fit_rows: int = 0,
    batch: int = 16384,
) -> ClusterResult:
    """The step on in-memory features in one process (benchmarks, tests)."""
    _, result = cluster_step(
        features.split(batch),
        [len(features)],
        k,
        width=features.shape[1],
        device=features.device,
        batch=batch,
        pca_dim=pca_dim,
        iterations=iterations,
        seed=seed,
        backend=resolve_backend(backend, features.device),
        pca_fit_rows=pca_fit_rows,
    )
    return result
