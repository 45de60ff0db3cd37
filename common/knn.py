"""Weighted k-nearest-neighbour classification on frozen features (DINO's eval_knn.py,
Caron et al. 2021) as an exact brute-force search in torch, shared by the probe's
`--eval knn`, `sslx viz neighbours` and training's `--monitor`.

Deterministic on a device: ties between neighbours go to the lower memory index, ties
between classes to the lower class index, and no reduction uses atomics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from sslx.errors import InputError

# (k, temperature): DINO's default 20-NN at T = 0.07, and lightly's benchmark default
# (knn_k=200, knn_t=0.1); 200 neighbours is also InstDisc's (Wu et al. 2018) and VISSL's.
KNN_SETTINGS: tuple[tuple[int, float], ...] = ((20, 0.07), (200, 0.1))
_EPS = 1e-12  # F.normalize's: an all-zero row stays zero (cosine 0 with everything)


def knn_name(k: int, temperature: float) -> str:
    """A setting's key in results.json: "k20_t0.07"."""
    return f"k{k}_t{temperature:g}"


def row_norms(x: torch.Tensor, what: str, rows: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's norm and 1 / norm (a row of zeros: 1 / eps, which keeps it zero), a block
    at a time. A norm is finite exactly when its row is: NaN or inf is one line."""
    norms = torch.cat([torch.linalg.vector_norm(b.float(), dim=1) for b in x.split(rows)])
    if not torch.isfinite(norms).all():
        raise InputError(f"{what} hold NaN or inf values: did the network diverge?")
    return norms, 1 / norms.clamp_min(_EPS)


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
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


def nearest(
    memory: torch.Tensor,
    queries: torch.Tensor,
    k: int,
    chunk: int = 512,
    device: torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The k memory rows most cosine-similar to each query, `chunk` queries at a time:
    yields (similarities, memory indices), each chunk x k, ordered by similarity then
    index (`top_k`), exact in float32.

    Memory, with N memory rows, D dims: the memory as float32 on `device` (4ND bytes, no
    copy if it is float32 there already), then per chunk chunk * N * 5 bytes (the
    similarities and one mask) + chunk * (4D + 16k), never queries x N. `device`
    defaults to the memory's; queries * N * D * 2 FLOPs."""
    if not 1 <= k <= len(memory):
        raise InputError(f"k = {k} neighbours asked for, but the memory has {len(memory)}")
    device = device or memory.device
    memory = memory.to(device=device, dtype=torch.float32)
    inverse = row_norms(memory, "the memory features")[1]  # checked before the first yield
    return _search(memory, inverse, queries, k, chunk)


def _search(
    memory: torch.Tensor, inverse: torch.Tensor, queries: torch.Tensor, k: int, chunk: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    device = memory.device
    for q in queries.split(chunk):
        q = q.to(device=device, dtype=torch.float32)
        q = q * row_norms(q, "the query features")[1][:, None]
        similarity = q @ memory.T
        similarity *= inverse  # cosine, without a normalised copy of the memory
        yield top_k(similarity, k)
        del similarity


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

    The search is `nearest` (its memory formula, plus chunk * 8K for the votes, K the
    largest k)."""
    largest = max(k for k, _ in settings)
    found = nearest(memory, queries, largest, chunk, device)
    if any(t <= 0 for _, t in settings):
        raise InputError(f"kNN temperatures must be positive, got {[t for _, t in settings]}")
    if len(memory_labels) != len(memory) or len(query_labels) != len(queries):
        raise ValueError("features and labels differ in length")
    check_labels(memory_labels, num_classes)
    check_labels(query_labels, num_classes)
    known = memory_labels.to(device or memory.device).long()
    top1 = {s: 0 for s in settings}
    top5 = dict(top1)
    for (values, index), truth in zip(found, query_labels.split(chunk), strict=True):
        votes, truth = known[index], truth.to(index.device).long()
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
