"""Weighted k-nearest-neighbour classification on frozen features (DINO's eval_knn.py,
Caron et al. 2021) as an exact brute-force search in torch, shared by the probe's
`--eval knn`, `sslx viz neighbours` and training's `--monitor`.

Deterministic on a device: ties between neighbours go to the lower memory index, ties
between classes to the lower class index, and no reduction uses atomics. Where bf16 is
fast the search is screened in bf16 first, with a proven error bound, and finished in
float32: the same neighbours up to float32 rounding (docs/probe.md, "kNN").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
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
    *,
    screen: bool | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The k memory rows most cosine-similar to each query, `chunk` queries at a time:
    yields (similarities, memory indices), each chunk x k, ordered by similarity then
    index (`top_k`), exact in float32.

    `screen` (default: `screening_pays`) finds them with a certified bfloat16 first pass
    (`_screened`): the same neighbours and similarities up to float32 rounding, faster
    where bf16 products are.

    Memory, with N memory rows, D dims: the memory as float32 on `device` (4ND bytes, no
    copy if it is float32 there already), then per chunk chunk * N * 5 bytes (the
    similarities and one mask) + chunk * (4D + 16k), never queries x N. Screening adds
    its bf16 copy of the memory (2N(D + 32)) and per chunk takes chunk * N * 3 bytes (the
    bf16 similarities and one mask) + about 64 bytes per candidate (a few hundred per
    query, at most `_CANDIDATES`; a query with more gets its float32 row, N * 5 bytes).
    `device` defaults to the memory's; queries * N * D * 2 FLOPs (in bf16 if screened)."""
    if not 1 <= k <= len(memory):
        raise InputError(f"k = {k} neighbours asked for, but the memory has {len(memory)}")
    device = device or memory.device
    memory = memory.to(device=device, dtype=torch.float32)
    inverse = row_norms(memory, "the memory features")[1]  # checked before the first yield
    if screen is None:
        screen = screening_pays(device, len(memory), len(queries), k)
    return (_screened if screen else _search)(memory, inverse, queries, k, chunk)


def screening_pays(device: torch.device, rows: int, queries: int, k: int) -> bool:
    """Whether `nearest` screens in bf16 by default: on a CPU with bf16 dot-product
    instructions (AMX or AVX-512 BF16; without them bf16 is emulated, slower than
    float32), for a memory far larger than the candidates a query keeps, and enough
    queries to repay the memory's bf16 copy."""
    if device.type != "cpu" or rows < _ROWS_PER_K * k or queries < _SCREEN_QUERIES:
        return False
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    onednn = torch.backends.mkldnn  # bf16 matmuls run on oneDNN's kernels
    return (onednn.is_available() and onednn.enabled) and any(
        getattr(torch.cpu, name, lambda: False)() for name in checks
    )


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


# The bf16 screen. Unit roundoffs (round to nearest) of float32 and bfloat16.
_U32, _U16 = 2.0**-24, 2.0**-8
_ROWS_PER_K = 32  # screened by default only when the memory is this many times k
_SCREEN_QUERIES = 1024  # the memory's bf16 copy costs about a chunk's float32 search
_CANDIDATES = 2048  # per query at most (or 4k): past that its float32 row costs less
_PAD = 32  # a bf16 row: D dims, the shift's column, zeros up to a multiple of 32


def _gamma(n: int) -> float:
    """Higham's gamma_n: a float32 sum of n terms, in any order, errs by at most gamma_n
    times the sum of their magnitudes."""
    return n * _U32 / (1 - n * _U32)


@contextmanager
def _fp32_sums(device: torch.device) -> Iterator[None]:
    """cuBLAS may otherwise add a bf16 product's partial sums in bf16 (the bound's
    float32 accumulation would not hold); CPU kernels always accumulate in float32."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_bf16_reduced_precision_reduction
    matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        matmul.allow_bf16_reduced_precision_reduction = before


class _Screen:
    """The memory rows L2-normalised in bf16, and the bound on the error of their bf16
    products with a query (docs/probe.md, "kNN": the derivation).

    With q the query as the float32 search normalises it and m = memory row * inverse
    (exact), the float32 search's cosine s and the screen's a (bf16, the product shifted
    down by `shift`) satisfy |a + shift - q.m| <= slack + w|a| and |s - q.m| <= e32."""

    w = _U16 / (1 - _U16)  # a float32 sum's rounding to bf16: |a - sum| <= w|a|

    def __init__(self, memory: torch.Tensor, inverse: torch.Tensor, rows: int = 1024) -> None:
        n, d = memory.shape
        self.dims, self.width = d, (d // _PAD + 1) * _PAD
        self.rows = torch.empty(n, self.width, dtype=torch.bfloat16, device=memory.device)
        part = torch.empty(min(rows, n), d, device=memory.device)  # no normalised copy
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            torch.mul(memory[start:stop], inverse[start:stop, None], out=part[: stop - start])
            self.rows[start:stop, :d] = part[: stop - start]  # (mul's out= in bf16: slow)
        self.rows[:, d] = 1  # times the query's -shift: the product comes out shifted
        self.rows[:, d + 1 :] = 0
        self.norm = (1 + _U32) ** 2 / (1 - _gamma(d + 2))  # bounds |q| and |m|
        self.beta = _U32 + _U16 + _U32 * _U16  # a bf16 memory element's relative error
        self.e32 = (_gamma(d) + 2 * _U32) * self.norm**2

    def approximate(self, q: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
        """bf16 (q.m - shift) for every memory row (`shift` a bf16 value), and each
        query's slack (float64)."""
        d, nu, beta = self.dims, self.norm, self.beta
        low = torch.zeros(len(q), self.width, dtype=torch.bfloat16, device=q.device)
        low[:, :d] = q
        low[:, d] = -shift
        # |bf16(q) - q|: the difference is exact (Sterbenz), its norm within nu of it.
        rho = torch.linalg.vector_norm(low[:, :d].float() - q, dim=1).double() * nu
        with _fp32_sums(q.device):
            approx = low @ self.rows.T
        inputs = rho * nu + beta * nu * nu + rho * beta * nu  # Cauchy-Schwarz, three times
        sums = _gamma(d + 1) * ((nu + rho) * nu * (1 + beta) + abs(shift))
        return approx, (inputs + sums) * (1 + 2**-10)  # the slack: float64 rounding, FTZ

    def floors(self, kth: torch.Tensor, slack: torch.Tensor, shift: float) -> torch.Tensor:
        """Each query's lowest bf16 approximation that may still belong to a k nearest
        row, from `kth`, its k-th largest approximation: at least k rows have q.m >= lowest,
        so one whose q.m + 2 e32 is below it cannot be among the k in float32."""
        w = self.w
        lowest = kth + shift - slack - w * kth.abs()
        reach = lowest - 2 * self.e32 - shift - slack  # a + w|a| below it: not a candidate
        tau = torch.where(reach >= 0, reach / (1 + w), reach / (1 - w))
        floor = tau.to(torch.bfloat16)
        below = torch.nextafter(floor, torch.full_like(floor, -math.inf))
        return torch.where(floor.double() > tau, below, floor)  # rounded down


def _screened(
    memory: torch.Tensor, inverse: torch.Tensor, queries: torch.Tensor, k: int, chunk: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`_search`'s neighbours through a certified bf16 screen: every memory row whose bf16
    cosine may, within the bound, reach the k-th is a candidate; the candidates' cosines
    are computed in float32 (`_exact_among`) and ranked by `top_k`."""
    screen = _Screen(memory, inverse)
    shift = 0.0  # the previous chunk's typical k-th cosine, in bf16: a smaller rounding
    for q in queries.split(chunk):
        q = q.to(device=memory.device, dtype=torch.float32)
        q = q * row_norms(q, "the query features")[1][:, None]
        approx, slack = screen.approximate(q, shift)
        kth = approx.topk(k, dim=1).values[:, -1].double()
        rows, cols = (approx >= screen.floors(kth, slack, shift)[:, None]).nonzero().unbind(1)
        del approx
        yield _exact_among(memory, inverse, q, rows, cols, k)
        shift = float((kth + shift).median().to(torch.bfloat16))


def _argsort(keys: torch.Tensor) -> torch.Tensor:
    """Distinct keys' ascending order; on a CPU through NumPy, whose sort took a tenth of
    torch's parallel one on 2 busy cores."""
    if keys.is_cpu:
        return torch.from_numpy(np.argsort(keys.numpy()))
    return keys.argsort()


def _exact_among(
    memory: torch.Tensor,
    inverse: torch.Tensor,
    q: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`top_k` of the float32 cosines of the candidate pairs (query rows, memory cols),
    in query then memory order; a query with over `_CANDIDATES` gets its whole row."""
    n, m, device = len(memory), len(q), memory.device
    counts = torch.bincount(rows, minlength=m)
    whole = (counts > max(_CANDIDATES, 4 * k)).nonzero()[:, 0]
    if len(whole):
        keep = counts[rows] <= max(_CANDIDATES, 4 * k)
        rows, cols, counts[whole] = rows[keep], cols[keep], 0
    exact = torch.empty(len(rows), device=device)
    if len(rows):
        # sampled_addmm walks the pattern row by row: memory-major, each memory row is
        # read once and dotted with the chunk's queries that need it.
        order = _argsort(cols * m + rows)
        crow = torch.zeros(n + 1, dtype=torch.int64, device=device)
        crow[1:] = torch.bincount(cols, minlength=n).cumsum(0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            pattern = torch.sparse_csr_tensor(
                crow,
                rows[order],
                torch.zeros(len(rows), device=device),
                (n, m),
                check_invariants=False,
            )
        dots = torch.sparse.sampled_addmm(pattern, memory, q.T, beta=0.0).values()
        exact[order] = dots * inverse[cols[order]]  # as `_search`: a dot, then * inverse
    width = max(int(counts.max()), k)
    slot = torch.arange(len(rows), device=device) - (counts.cumsum(0) - counts)[rows]
    similarity = torch.full((m, width), -math.inf, device=device)
    similarity[rows, slot] = exact
    index = torch.full((m, width), n, device=device)
    index[rows, slot] = cols
    values, position = top_k(similarity, k)  # slots run in memory order: ties as _search
    found = index.gather(1, position)
    if len(whole):
        full = q[whole] @ memory.T
        full *= inverse
        values[whole], found[whole] = top_k(full, k)
    return values, found


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
