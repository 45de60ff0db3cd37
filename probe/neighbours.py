"""Evaluations of frozen features without training: weighted k-nearest-neighbour
classification and the agreement of k-means clusters with the labels, per layer.

Both read a layer of the probe's feature cache (`layer_features`) in float32 on cosine
geometry (rows L2-normalised). kNN follows DINO's eval_knn.py (Caron et al. 2021) as an
exact brute-force search in torch; the clustering is the k-means DeepCluster trains with
(`sslx.common.kmeans`), scored with scikit-learn's NMI, AMI and ARI (docs/probe.md).

kNN is deterministic on a device: ties between neighbours go to the lower memory index,
ties between classes to the lower class index, and no reduction uses atomics.
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
from sslx.errors import InputError
from sslx.probe.features import FeatureCache

# (k, temperature): DINO's default 20-NN at T = 0.07, and lightly's benchmark default
# (knn_k=200, knn_t=0.1); 200 neighbours is also InstDisc's (Wu et al. 2018) and VISSL's.
KNN_SETTINGS: tuple[tuple[int, float], ...] = ((20, 0.07), (200, 0.1))
# k-means per layer: restarts averaged, and DeepCluster's iterations (its FAISS setting).
CLUSTER_RESTARTS, CLUSTER_ITERATIONS = 3, 20
_EPS = 1e-12  # F.normalize's: an all-zero row stays zero (cosine 0 with everything)


def knn_name(k: int, temperature: float) -> str:
    """A setting's key in results.json: "k20_t0.07"."""
    return f"k{k}_t{temperature:g}"


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


def _norms(x: torch.Tensor, what: str, rows: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's norm and 1 / norm (a row of zeros: 1 / eps, which keeps it zero), a block
    at a time. A norm is finite exactly when its row is: NaN or inf is one line."""
    norms = torch.cat([torch.linalg.vector_norm(b.float(), dim=1) for b in x.split(rows)])
    if not torch.isfinite(norms).all():
        raise InputError(f"{what} hold NaN or inf values: did the network diverge?")
    return norms, 1 / norms.clamp_min(_EPS)


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise ValueError(f"labels outside 0..{num_classes - 1}")


def top_k(similarity: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest entries of each row, ordered by value descending then column index
    ascending, and their columns. torch.topk picks among equal values as its kernel
    likes; here the k-th value's ties go to the lowest columns, on any device."""
    values, index = similarity.topk(k, dim=1)
    kth = values[:, -1:]
    crowded = ((similarity >= kth).sum(1) > k).nonzero()[:, 0]  # rows with a tie at the cut
    if len(crowded):
        rows, cut = similarity[crowded], kth[crowded]
        above = rows > cut
        level = rows == cut
        room = k - above.sum(1, keepdim=True)
        keep = above | (level & (level.cumsum(1) <= room))  # the lowest-index ties fill it
        index[crowded] = keep.nonzero()[:, 1].view(-1, k)
    index = index.sort(dim=1).values
    values, order = similarity.gather(1, index).sort(dim=1, descending=True, stable=True)
    return values, index.gather(1, order)


def _class_scores(
    similarity: torch.Tensor, labels: torch.Tensor, temperature: float, num_classes: int
) -> torch.Tensor:
    """Each class's vote, sum of exp(sim / T) over the neighbours with that label.

    The row's largest similarity is subtracted first: that multiplies a row's votes by
    one constant (the ranking is DINO's) and keeps exp finite for any T. One scatter per
    neighbour rank: every add has its own row, so the sum runs in neighbour order on
    any device (a single scatter_add_ on CUDA adds in atomic, changing order)."""
    weights = ((similarity - similarity[:, :1]) / temperature).exp()
    scores = torch.zeros(len(similarity), num_classes, device=similarity.device)
    for j in range(similarity.shape[1]):
        scores.scatter_add_(1, labels[:, j : j + 1], weights[:, j : j + 1])
    return scores


def _hits(scores: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 and top-5 hits with classes ranked by score, ties to the lower class. A class
    without a vote never counts as a hit: with ten classes and k = 20, ranking unvoted
    classes (all tied at 0) would hand out top-5 hits by class index."""
    own = scores.gather(1, truth[:, None])
    classes = torch.arange(scores.shape[1], device=scores.device)
    beaten = (scores > own) | ((scores == own) & (classes < truth[:, None]))
    rank = beaten.sum(1)
    return rank == 0, (rank < 5) & (own[:, 0] > 0)


def knn_accuracies(
    memory: torch.Tensor,
    memory_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    num_classes: int,
    settings: Sequence[tuple[int, float]] = KNN_SETTINGS,
    chunk: int = 512,
    device: torch.device | None = None,
) -> dict[tuple[int, float], dict[str, float]]:
    """Weighted kNN top-1 (and top-5 with 5 classes or more) accuracy, as fractions, for
    each (k, temperature) in `settings`, from one pass over the similarities.

    DINO's protocol: rows L2-normalised, each query's k most cosine-similar memory rows
    vote for their labels with weight exp(sim / T), classes ranked by total vote. The
    settings share the neighbours: the first k of the largest k's ordered list are the
    k nearest (the order is total: similarity, then memory index).

    Memory, with N memory rows, Q queries, D dims, K the largest k: the memory as float32
    on `device` (4ND bytes, no copy if it is float32 there already), then per chunk of
    queries chunk * N * 5 bytes (the similarities and one mask) + chunk * (4D + 24K), never
    Q x N. `device` defaults to the memory's; Q * N * D * 2 FLOPs in float32."""
    device = device or memory.device
    largest = max(k for k, _ in settings)
    if not 1 <= largest <= len(memory):
        raise InputError(f"k = {largest} neighbours asked for, but the memory has {len(memory)}")
    if any(t <= 0 for _, t in settings):
        raise InputError(f"kNN temperatures must be positive, got {[t for _, t in settings]}")
    if len(memory_labels) != len(memory) or len(query_labels) != len(queries):
        raise ValueError("features and labels differ in length")
    _check_labels(memory_labels, num_classes)
    _check_labels(query_labels, num_classes)
    memory = memory.to(device=device, dtype=torch.float32)  # no copy if it already is
    inverse = _norms(memory, "the memory features")[1]
    known = memory_labels.to(device).long()
    top1 = {s: 0 for s in settings}
    top5 = dict(top1)
    for q, truth in zip(queries.split(chunk), query_labels.split(chunk), strict=True):
        q = q.to(device=device, dtype=torch.float32)
        q = q * _norms(q, "the query features")[1][:, None]
        similarity = q @ memory.T
        similarity *= inverse  # cosine, without a normalised copy of the memory
        values, index = top_k(similarity, largest)
        del similarity
        votes, truth = known[index], truth.to(device).long()
        for k, t in settings:
            one, five = _hits(_class_scores(values[:, :k], votes[:, :k], t, num_classes), truth)
            top1[(k, t)] += int(one.sum())
            top5[(k, t)] += int(five.sum())
    out = {}
    for s in settings:
        out[s] = {"top1": top1[s] / len(queries)}
        if num_classes >= 5:
            out[s]["top5"] = top5[s] / len(queries)
    return out


def knn_accuracy(
    memory: torch.Tensor,
    memory_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    k: int,
    temperature: float,
    num_classes: int,
    chunk: int = 512,
) -> dict[str, float]:
    """One (k, temperature) of `knn_accuracies`: {"top1": ..., "top5": ...} as fractions."""
    setting = (k, temperature)
    args = (memory, memory_labels, queries, query_labels, num_classes, (setting,), chunk)
    return knn_accuracies(*args)[setting]


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
    _check_labels(labels, num_classes)
    backend = backend or cluster_backend()
    inverse = _norms(features, "the features")[1]
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
