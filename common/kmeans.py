"""k-means on FAISS or in torch, and the choice between them: DeepCluster's clustering
step and the probe's cluster-quality evaluation (`sslx probe --eval cluster`) share it.

Two backends with the same interface and seeding semantics:

- `faiss`: `faiss.Clustering` on a flat L2 index, on the training GPU when FAISS's GPU
  path works in this process (checked once by a tiny search), else on the CPU;
- `torch`: the same algorithm in torch on any device, for machines with CUDA torch but
  no working GPU build of FAISS: k distinct random points as initial centroids, Lloyd
  iterations, and FAISS's treatment of empty clusters (a non-empty cluster, picked with
  probability proportional to its size - 1, is split in two by a small symmetric
  perturbation of its centroid).

The installed faiss-gpu wheel is built for one CUDA major version; under a torch built
for another, FAISS may see no GPU or fail on its first kernel. `auto` therefore probes
the GPU path before trusting it and says in one line when it falls back.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from sslx.errors import InputError

# What `resolve_backend` implements. DeepCluster's torch-free spec spells the same names
# as its --kmeans-backend choices (KMEANS_BACKENDS); a test keeps the two equal.
BACKENDS = ("auto", "faiss", "torch")

_SPLIT_EPS = 1 / 1024  # FAISS's perturbation when splitting a cluster
_GPU_PROBLEMS: dict[int, str | None] = {}  # FAISS GPU probe result per device, per process
_TOLD: set[str] = set()
_FAISS_IMPORT: dict = {}  # the import's outcome, once per process: module and problem


@dataclass(frozen=True)
class Backend:
    """Where k-means runs and why: `name` is faiss or torch, `gpu` FAISS's GPU (or None)."""

    name: str
    device: torch.device
    reason: str

    @property
    def gpu(self) -> int | None:
        return self.device.index if self.device.type == "cuda" else None


def resolve_backend(name: str, device: torch.device) -> Backend:
    """auto: FAISS on the training GPU if its GPU path works, else torch on that GPU; on a
    CPU, FAISS (torch if FAISS is missing or will not load). An explicit faiss uses FAISS
    on the CPU when its GPU path does not work; an explicit torch never imports FAISS."""
    if name not in BACKENDS:
        raise InputError(f"unknown k-means backend {name!r} (known: {', '.join(BACKENDS)})")
    cpu = torch.device("cpu")
    if name == "torch":
        return Backend("torch", device, f"asked for; torch on {device}")
    missing = faiss_import_problem()
    if name == "faiss" and missing:
        raise InputError(f"--kmeans-backend faiss was asked for, but {missing}")
    if device.type != "cuda":
        if missing:
            return _told(Backend("torch", cpu, f"auto: {missing}; torch on the CPU"))
        return Backend("faiss", cpu, f"{name}: FAISS on the CPU, where training runs")
    index = device.index if device.index is not None else torch.cuda.current_device()
    gpu = torch.device("cuda", index)
    problem = faiss_gpu_problem(index)
    if problem is None:
        return Backend("faiss", gpu, f"{name}: FAISS's GPU path works on {gpu}")
    if name == "faiss":
        return _told(Backend("faiss", cpu, f"asked for; FAISS's GPU path fails ({problem}): CPU"))
    return _told(Backend("torch", gpu, f"auto: FAISS's GPU path fails ({problem}); torch on {gpu}"))


def _told(backend: Backend) -> Backend:
    if backend.reason not in _TOLD:  # one line per process, not one per epoch
        _TOLD.add(backend.reason)
        print(f"sslx: k-means backend: {backend.reason}", file=sys.stderr, flush=True)
    return backend


def kmeans_input(backend: Backend, features: torch.Tensor) -> torch.Tensor:
    """The features where `backend` reads them: a host copy for FAISS (which allocates its
    own GPU memory; rebinding the caller's name to it frees the device rows), else on the
    backend's device."""
    return features.cpu() if backend.name == "faiss" else features.to(backend.device)


def run_kmeans(
    backend: Backend, features: torch.Tensor, k: int, iterations: int, seed: int
) -> tuple[np.ndarray, float]:
    """k-means of `kmeans_input`'s (n, d) features: every row's cluster and the objective."""
    if backend.name == "faiss":
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()  # the device rows freed by `kmeans_input`
        return kmeans_faiss(features.numpy(), k, iterations, seed, backend.gpu)
    return kmeans_torch(features, k, iterations, seed)


def faiss_gpu_problem(index: int) -> str | None:
    """None if FAISS can add and search on GPU `index` in this process, else why not."""
    if index not in _GPU_PROBLEMS:
        _GPU_PROBLEMS[index] = _probe_faiss_gpu(index)
    return _GPU_PROBLEMS[index]


def _probe_faiss_gpu(index: int) -> str | None:
    faiss = _faiss()
    if faiss is None:
        return faiss_import_problem()
    if not hasattr(faiss, "GpuIndexFlatL2"):
        return "this faiss build has no GPU support"
    try:
        gpus = faiss.get_num_gpus()
        if gpus <= index:
            return f"faiss sees {gpus} GPU(s), not GPU {index}"
        config = faiss.GpuIndexFlatConfig()
        config.device = index
        probe = faiss.GpuIndexFlatL2(faiss.StandardGpuResources(), 8, config)
        x = np.random.default_rng(0).random((64, 8), dtype=np.float32)
        probe.add(x)
        _, found = probe.search(x, 1)
    except Exception as e:  # e.g. a CUDA 12 FAISS under a CUDA 13 driver stack
        return f"a test search failed: {type(e).__name__}: {str(e).strip().splitlines()[0]}"
    if not np.array_equal(found[:, 0], np.arange(64)):
        return "a test search found wrong neighbours"
    return None


def kmeans_faiss(
    x: np.ndarray, k: int, iterations: int, seed: int, gpu: int | None = None
) -> tuple[np.ndarray, float]:
    """FAISS k-means on GPU `gpu` (None: the CPU); assignments and objective."""
    faiss = _faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    clus = faiss.Clustering(x.shape[1], k)
    clus.niter = iterations
    clus.seed = seed
    clus.max_points_per_centroid = 10_000_000  # no subsampling, as DeepCluster
    clus.min_points_per_centroid = 1  # small data is refused earlier; no FAISS warning
    if gpu is not None:
        config = faiss.GpuIndexFlatConfig()
        config.useFloat16 = False
        config.device = gpu  # the rank's own GPU, not always GPU 0
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
    squares = _square_norms(x, k)  # the rows do not move: once, not every iteration
    sums = torch.empty_like(centroids)
    for _ in range(iterations):
        assign, _ = _nearest(x, centroids, squares)
        counts = torch.bincount(assign, minlength=k)
        sums.zero_().index_add_(0, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].float()
        split_empty(centroids, counts.cpu().numpy().astype(np.float64), rng)
    assign, distances = _nearest(x, centroids, squares)
    return assign.cpu().numpy(), float(distances.double().sum())


def _rows(k: int) -> int:
    return max(1, 2**26 // k)  # a chunk's distances to k centroids: 2^26 floats


def _square_norms(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Each row's squared norm, in `_nearest`'s chunks for k centroids."""
    return [(chunk * chunk).sum(1, keepdim=True) for chunk in x.split(_rows(k))]


def _nearest(
    x: torch.Tensor, centroids: torch.Tensor, squares: list[torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of and squared distance to the nearest centroid, in chunks of rows;
    `squares` are x's `_square_norms` (computed here if not given)."""
    chunks = x.split(_rows(centroids.shape[0]))
    squares = _square_norms(x, centroids.shape[0]) if squares is None else squares
    c_sq = (centroids * centroids).sum(1)
    assign, dist = [], []
    for chunk, x_sq in zip(chunks, squares, strict=True):
        d2 = x_sq - 2 * (chunk @ centroids.T) + c_sq  # (2 * chunk) @ ...: a copy of x
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


def faiss_import_problem() -> str | None:
    """None if FAISS imports in this process, else why not, in a few words."""
    if _faiss() is not None:
        return None
    return _FAISS_IMPORT.get("problem") or "faiss is not installed"


def _faiss():
    """The faiss module, or None. Not only ImportError: a faiss-gpu wheel whose CUDA
    libraries are missing (the CUDA 12 wheel on a CUDA 13 machine) raises RuntimeError or
    OSError on import, and that must not stop a run that can use torch instead."""
    if "module" not in _FAISS_IMPORT:
        try:
            import faiss

            _FAISS_IMPORT.update(module=faiss, problem=None)
        except ImportError:
            _FAISS_IMPORT.update(module=None, problem="faiss is not installed")
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:160]
            problem = f"faiss is installed but fails to load ({type(e).__name__}: {first})"
            _FAISS_IMPORT.update(module=None, problem=problem)
    return _FAISS_IMPORT["module"]
