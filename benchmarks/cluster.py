"""Benchmark DeepCluster's clustering step: features -> PCA-whitening -> k-means -> assignment.

Random but clustered "fc7" features (N x 4096, k true centres, a decaying spectrum like
real features) are clustered into k clusters as DeepCluster does each epoch. Measured
side by side, in one run, on this machine:

- the whole step with the FAISS backend and the PCA fitted on all rows, or on a random
  subset of rows (`--fit-rows`); the subset's assignments are scored in the full PCA's
  space (their k-means objective there, and NMI against the full-PCA clustering), so
  the table shows what the subset costs in quality;
- k-means alone (20 iterations + assignment) on the same whitened 256-d data with the
  FAISS backend, the torch backend and scikit-learn's KMeans (Lloyd, random init,
  n_init 1, 20 iterations) as the reference.

    python benchmarks/cluster.py                    # 100k x 4096, k = 1000, CPU
    python benchmarks/cluster.py --n 20000 --k 200  # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from sslx.common.kmeans import kmeans_faiss, kmeans_torch
from sslx.train.methods.deepcluster.clustering import FeatureStats, cluster, l2_normalise


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="samples")
    p.add_argument("--dim", type=int, default=4096, help="feature width (fc7)")
    p.add_argument("--k", type=int, default=1000, help="clusters")
    p.add_argument(
        "--fit-rows",
        type=int,
        nargs="*",
        default=[20_000, 10_000],
        help="PCA fitted on this many random rows, besides all of them",
    )
    return p.parse_args()


def features(n: int, dim: int, centres: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    decay = torch.logspace(0, -1.5, dim)  # a decaying spectrum, as fc7 features have
    means = torch.randn(centres, dim, generator=g) * decay
    labels = torch.randint(0, centres, (n,), generator=g)
    x = torch.empty(n, dim)
    for rows in torch.arange(n).split(8192):
        noise = torch.randn(len(rows), dim, generator=g) * decay
        x[rows] = means[labels[rows]] + 0.7 * noise
    return x


def objective_in(space: torch.Tensor, assignments: np.ndarray) -> float:
    """k-means objective of given assignments in a given space (centroids = means)."""
    a = torch.from_numpy(assignments)
    k = int(a.max()) + 1
    sums = torch.zeros(k, space.shape[1], dtype=torch.float64).index_add_(0, a, space.double())
    counts = torch.bincount(a, minlength=k).clamp_min(1).double()
    centroids = sums / counts[:, None]
    return float(((space.double() - centroids[a]) ** 2).sum())


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    args = parse_args()
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    print(
        f"# sslx clustering benchmark, {date.today()}, {platform.machine()}, {threads} cores, "
        f"torch {torch.__version__}"
    )
    x = features(args.n, args.dim, args.k)
    print(
        f"features: {args.n} x {args.dim}, {args.k} true centres; k = {args.k}, "
        f"20 iterations, PCA to 256\n"
    )

    print("## the whole step (FAISS k-means)")
    print(
        "| PCA fitted on | statistics + PCA + whiten + L2 s | k-means + assign s | total s "
        "| objective in full-PCA space | NMI vs full |\n|---|---|---|---|---|---|"
    )
    full = cluster(x, args.k, seed=0, backend="faiss")
    stats = FeatureStats(x.shape[1], x.device)
    stats.add(x)
    space = l2_normalise(stats.pca(256).apply(x))
    reference = objective_in(space, full.assignments)
    rows = [("all rows", full)]
    for fit_rows in args.fit_rows:
        rows.append(
            (f"{fit_rows} rows", cluster(x, args.k, seed=0, backend="faiss", pca_fit_rows=fit_rows))
        )
    for label, r in rows:
        pca_s = r.seconds_features + r.seconds_pca  # streaming statistics, eigenvectors, projection
        score = objective_in(space, r.assignments)
        nmi = normalized_mutual_info_score(full.assignments, r.assignments)
        print(
            f"| {label} | {pca_s:.2f} | {r.seconds_kmeans:.2f} "
            f"| {pca_s + r.seconds_kmeans:.2f} | {score:.1f} ({score / reference:.3f}) "
            f"| {nmi:.3f} |"
        )

    print("\n## k-means alone on the same whitened 256-d data (20 iterations + assignment)")
    print("| backend | s | s / iteration | objective | time vs FAISS |\n|---|---|---|---|---|")
    data = space.numpy()
    (_, faiss_obj), faiss_s = timed(lambda: kmeans_faiss(data, args.k, 20, seed=0))
    (_, torch_obj), torch_s = timed(lambda: kmeans_torch(space, args.k, 20, seed=0))
    sk, sk_s = timed(
        lambda: KMeans(
            args.k, init="random", n_init=1, max_iter=20, tol=0, algorithm="lloyd", random_state=0
        ).fit(data)
    )
    for name, s, obj in (
        ("FAISS (CPU)", faiss_s, faiss_obj),
        ("torch (CPU)", torch_s, torch_obj),
        ("scikit-learn KMeans", sk_s, float(sk.inertia_)),
    ):
        print(f"| {name} | {s:.2f} | {s / 20:.3f} | {obj:.1f} | {s / faiss_s:.2f} |")


if __name__ == "__main__":
    main()
