"""Evaluations of frozen features without training, per layer: the probe's side of the
weighted kNN (`sslx.common.knn`) and the agreement of k-means clusters with the labels.

Both read a layer of the probe's feature cache (`layer_features`) in float32 on cosine
geometry (rows L2-normalised). The clustering is the k-means DeepCluster trains with
(`sslx.common.kmeans`), scored with scikit-learn's NMI, AMI and ARI (docs/probe.md).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
)

from sslx import seeds
from sslx.common.kmeans import Backend, kmeans_input, resolve_backend, run_kmeans
from sslx.common.knn import KNN_SETTINGS, check_labels, row_norms
from sslx.errors import InputError
from sslx.probe.features import FeatureCache

# k-means per layer: restarts averaged, and DeepCluster's iterations (its FAISS setting).
CLUSTER_RESTARTS, CLUSTER_ITERATIONS = 3, 20


def check_evaluable(evals: Sequence[str], n_train: int, n_val: int, classes: int) -> None:
    """Refuse, before anything is written, data that kNN or k-means cannot run on."""
    largest = max(k for k, _ in KNN_SETTINGS)
    if "knn" in evals and n_train < largest:
        raise InputError(
            f"--eval knn takes the {largest} nearest training images, but the training split "
            f"has only {n_train}; use more data, or leave knn out of --eval"
        )
    if "cluster" in evals and n_val < classes:
        raise InputError(
            f"--eval cluster makes {classes} clusters of the validation split, which has "
            f"only {n_val} images"
        )


def layer_features(cache: FeatureCache, layer: str, rows: int = 4096) -> torch.Tensor:
    """One layer of `cache` as a float32 (samples, D) tensor, one row per sample.

    With ten crops per sample (the ten-crop validation cache) it takes the centre crop,
    TenCrop's fifth (index 4; the first is the top-left corner), so a query is seen as the
    memory (training) images are: one centre crop each.

    Built `rows` samples at a time into one preallocated tensor: peak memory is the
    result, 4 * N * D bytes, plus one block (the float16 cache may be memory-mapped and
    is only read)."""
    if layer not in cache.features:
        held = ", ".join(cache.features) or "no layer"
        raise InputError(f"the feature cache has no {layer} features (it holds {held})")
    source = cache.features[layer]
    n, crops = len(cache), cache.crops
    if crops not in (1, 10):
        raise ValueError(f"a cache with {crops} crops per sample: expected 1 or 10")
    grouped = source.view(n, crops, source.shape[1])  # rows i*crops.. are sample i's crops
    out = torch.empty((n, source.shape[1]), dtype=torch.float32)
    for start in range(0, n, rows):
        out[start : start + rows].copy_(grouped[start : start + rows, 4 if crops == 10 else 0])
    return out


def partition_scores(truth: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """How well a partition `found` agrees with the labels `truth`: scikit-learn's NMI and
    AMI (arithmetic-mean normalisation, its default) and ARI; 1.0 for the same partition
    under any renaming of the clusters."""
    return {
        "nmi": float(normalized_mutual_info_score(truth, found)),
        "ami": float(adjusted_mutual_info_score(truth, found)),
        "ari": float(adjusted_rand_score(truth, found)),
    }


def cluster_seed(seed: int, layer: str, restart: int) -> int:
    """Restart `restart`'s k-means seed at `layer`: the "eval_cluster" stream at (crc32 of
    the layer's name, restart) - crc32, not hash(), is the same in every process - kept
    below 2^31 as DeepCluster's, since FAISS takes a C int."""
    return seeds.int_seed(seed, "eval_cluster", zlib.crc32(layer.encode()), restart) % 2**31


def cluster_backend() -> Backend:
    """The k-means backend DeepCluster resolves on a CPU: FAISS when it imports, else torch."""
    return resolve_backend("auto", torch.device("cpu"))


def cluster_quality(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    seed: int,
    layer: str,
    restarts: int = CLUSTER_RESTARTS,
    iterations: int = CLUSTER_ITERATIONS,
    backend: Backend | None = None,
) -> dict[str, float | list[float]]:
    """k-means with k = `num_classes` on the L2-normalised features, scored against the
    labels: {"nmi", "ami", "ari"} averaged over `restarts`, and "<score>_restarts" lists.

    Restart r is seeded by `cluster_seed(seed, layer, r)` alone, so restarts=2 gives the
    first two of restarts=3's values. The k-means is `sslx.common.kmeans.run_kmeans` on
    `backend` (default: `cluster_backend`), with DeepCluster's settings: no subsampling
    and no PCA here. NMI and AMI use the arithmetic-mean normalisation (scikit-learn's
    default).

    Memory, with N rows of D dims: the normalised rows as float32 (4ND bytes) beside the
    input, and what the backend allocates (FAISS: k centroids and an N x k distance
    block); no N x N."""
    n = len(features)
    if not 2 <= num_classes <= n:
        raise InputError(f"k-means with {num_classes} clusters needs 2..{n} rows")
    if restarts < 1 or iterations < 1:
        raise InputError(f"restarts and iterations must be >= 1, got {restarts}, {iterations}")
    if len(labels) != n:
        raise ValueError("features and labels differ in length")
    check_labels(labels, num_classes)
    backend = backend or cluster_backend()
    inverse = row_norms(features, "the features")[1]
    x = kmeans_input(backend, features.float() * inverse[:, None])
    truth = labels.cpu().numpy()
    runs: dict[str, list[float]] = {"nmi": [], "ami": [], "ari": []}
    for restart in range(restarts):
        restart_seed = cluster_seed(seed, layer, restart)
        found, _ = run_kmeans(backend, x, num_classes, iterations, restart_seed)
        for name, value in partition_scores(truth, found).items():
            runs[name].append(value)
    out: dict[str, float | list[float]] = {m: float(np.mean(v)) for m, v in runs.items()}
    out.update({f"{m}_restarts": v for m, v in runs.items()})
    return out
