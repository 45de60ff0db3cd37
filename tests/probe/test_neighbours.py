"""Weighted kNN (DINO's protocol) and k-means cluster quality on data whose answers are
known by hand. Exact comparisons only where every value is exactly representable (axis
vectors, integers); elsewhere the margins are checked to dwarf float32 rounding, so no
BLAS kernel can change an outcome. The cluster scores of known partitions are computed
here from their formulas, not by scikit-learn."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from sslx import seeds
from sslx.common.kmeans import resolve_backend, run_kmeans
from sslx.errors import InputError
from sslx.probe.features import FeatureCache
from sslx.probe.neighbours import (
    _class_scores,
    check_evaluable,
    cluster_quality,
    cluster_seed,
    knn_accuracies,
    knn_accuracy,
    knn_name,
    layer_features,
    partition_scores,
    top_k,
)


def on_circle(degrees: list[float]) -> torch.Tensor:
    """Unit 2-D points at these angles; cosine similarity is the cosine of the angle."""
    radians = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([radians.cos(), radians.sin()], 1).float()


# The ambiguous query at 0 degrees: three class-0 points near 41 degrees, two class-1
# points near 5, and class 2 far away. Its 5 neighbours hold three 0s and two 1s.
AMBIGUOUS = [40.0, 41.0, 42.0, 5.0, 6.0, 180.0, 181.0, 182.0]
AMBIGUOUS_LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])


def test_the_exp_weighting_outvotes_the_majority_as_computed_by_hand():
    memory, query = on_circle(AMBIGUOUS), on_circle([0.0])
    cos = [math.cos(math.radians(a)) for a in AMBIGUOUS[:5]]
    t = 0.07
    class0 = sum(math.exp(c / t) for c in cos[:3])  # DINO's weights, unshifted
    class1 = sum(math.exp(c / t) for c in cos[3:])
    assert class1 / class0 == pytest.approx(20.6, rel=0.01)  # the near pair wins 20:1
    # _class_scores shifts by the best similarity: the same votes times exp(-cos 5 / T).
    similarity = torch.tensor([cos[3], cos[4], cos[0], cos[1], cos[2]])[None]
    labels = torch.tensor([[1, 1, 0, 0, 0]])
    scores = _class_scores(similarity, labels, t, 3)[0]
    scale = math.exp(-cos[3] / t)
    assert scores.tolist() == pytest.approx([class0 * scale, class1 * scale, 0.0], rel=1e-5)
    # The query is class 1: weighted (T = 0.07) it is right; nearly unweighted it is not.
    one = torch.tensor([1])
    assert knn_accuracy(memory, AMBIGUOUS_LABELS, query, one, 5, t, 3) == {"top1": 1.0}
    assert knn_accuracy(memory, AMBIGUOUS_LABELS, query, one, 5, 1000.0, 3) == {"top1": 0.0}
    # Three neighbours are the two 1s and the nearest 0: class 1 at any temperature.
    assert knn_accuracy(memory, AMBIGUOUS_LABELS, query, one, 3, 1000.0, 3) == {"top1": 1.0}


def test_well_separated_clusters_with_one_mislabelled_query():
    centres = [0, 90, 180, 270]
    memory = on_circle([c + d for c in centres for d in (-4, -2, 2, 4)])
    labels = torch.arange(4).repeat_interleave(4)
    queries = on_circle([c + d for c in centres for d in (-1, 1)])
    truth = torch.arange(4).repeat_interleave(2)
    truth[5] = 0  # the query at 181 degrees, labelled as the cluster at 0
    for k, t in [(4, 0.07), (8, 0.1), (12, 10.0)]:
        result = knn_accuracy(memory, labels, queries, truth, k, t, 4)
        assert result == {"top1": 7 / 8}  # four classes: no top-5


def test_top5_ranks_classes_by_vote_and_never_credits_an_unvoted_class():
    # One memory point per class; the class nearest the query (at 0 degrees) is 5, then 2...
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    memory = on_circle([10.0 * (rank + 1) for rank in range(8)])
    labels = torch.tensor(order)
    queries = on_circle([0.0, 0.0, 0.0])
    truth = torch.tensor([5, 0, 6])  # ranked 1st, 4th and 6th
    result = knn_accuracy(memory, labels, queries, truth, 8, 0.07, 8)
    assert result == {"top1": 1 / 3, "top5": 2 / 3}
    # With k = 2 only classes 5 and 2 get votes. Class 0 ties with the five other unvoted
    # classes at 0 and has the lowest index: ranking ties by index alone would call it 3rd.
    result = knn_accuracy(memory, labels, queries[:1], torch.tensor([0]), 2, 0.07, 8)
    assert result == {"top1": 0.0, "top5": 0.0}


def test_ties_go_to_the_lower_memory_index_then_the_lower_class():
    e0, e1 = [1.0, 0.0], [0.0, 1.0]  # every product and sum below is exact
    query = torch.tensor([e0])
    memory = torch.tensor([e0, e0, e1])
    # Two neighbours at similarity exactly 1: k = 1 takes the lower index.
    assert knn_accuracy(memory, torch.tensor([1, 0, 2]), query, torch.tensor([1]), 1, 0.1, 3) == {
        "top1": 1.0
    }
    assert knn_accuracy(memory, torch.tensor([0, 1, 2]), query, torch.tensor([1]), 1, 0.1, 3) == {
        "top1": 0.0
    }
    # k = 2: classes 3 and 1 both score exp(0) = 1 exactly; the lower class, 1, is predicted.
    votes = torch.tensor([3, 1, 0])
    for label, top1 in [(1, 1.0), (3, 0.0)]:
        result = knn_accuracies(memory, votes, query, torch.tensor([label]), 5, [(2, 0.1)])
        assert result == {(2, 0.1): {"top1": top1, "top5": 1.0}}


def test_top_k_orders_by_value_then_index_like_a_full_sort():
    generator = torch.Generator().manual_seed(0)
    similarity = torch.randint(0, 4, (64, 50), generator=generator).float()  # many ties
    for k in (1, 7, 50):
        values, index = top_k(similarity, k)
        for row in range(len(similarity)):
            ranked = sorted(range(50), key=lambda j, r=row: (-similarity[r, j].item(), j))[:k]
            assert index[row].tolist() == ranked
            assert values[row].tolist() == similarity[row, ranked].tolist()


def blobs(n_per: int, classes: int, dims: int, spread: float, seed: int):
    """Gaussian blobs around random centres (the same for every seed), float16 like the
    feature cache."""
    centres = torch.randn(classes, dims, generator=torch.Generator().manual_seed(99))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat(n_per)
    x = centres[labels] + spread * torch.randn(len(labels), dims, generator=generator)
    return x.half(), labels


def reference_knn(memory, labels, queries, truth, k, t, classes):
    """DINO's protocol in float64 over the full similarity matrix, and the smallest margins
    it relied on: between the k-th and k+1-th similarity, and the two best classes' votes
    (relative)."""
    m = torch.nn.functional.normalize(memory.double(), dim=1)
    q = torch.nn.functional.normalize(queries.double(), dim=1)
    similarity = q @ m.T
    ordered, index = similarity.sort(dim=1, descending=True, stable=True)
    gap = (ordered[:, k - 1] - ordered[:, k]).min().item()
    weights = (ordered[:, :k] / t).exp()
    scores = torch.zeros(len(q), classes, dtype=torch.float64)
    scores.scatter_add_(1, labels[index[:, :k]], weights)
    best = scores.sort(dim=1, descending=True).values
    margin = ((best[:, 0] - best[:, 1]) / best[:, 0]).min().item()
    ranked = scores.argsort(dim=1, descending=True, stable=True)
    own = scores.gather(1, truth[:, None])[:, 0]
    top5 = ((ranked[:, :5] == truth[:, None]).any(1) & (own > 0)).double().mean().item()
    return {"top1": (ranked[:, 0] == truth).double().mean().item(), "top5": top5}, gap, margin


def test_chunked_equals_unchunked_equals_a_float64_reference():
    memory, labels = blobs(60, 6, 16, spread=3.0, seed=3)
    queries, truth = blobs(25, 6, 16, spread=3.0, seed=103)
    settings = [(20, 0.07), (50, 0.1)]
    whole = knn_accuracies(memory, labels, queries, truth, 6, settings, chunk=1000)
    assert knn_accuracies(memory, labels, queries, truth, 6, settings, chunk=7) == whole
    for k, t in settings:
        expected, gap, margin = reference_knn(memory, labels, queries, truth, k, t, 6)
        # Float32 rounding moves a cosine by ~1e-7 and a vote by ~1e-7 / T relative: these
        # margins are 100 times that, so no kernel can flip a neighbour or a prediction.
        assert gap > 1e-5 and margin > 1e-4
        assert whole[(k, t)] == pytest.approx(expected, abs=1e-12)
        assert 0.3 < expected["top1"] < 0.8  # overlapping classes: the votes matter


def test_bad_knn_input_is_one_line():
    memory, labels = blobs(3, 2, 4, spread=0.1, seed=0)
    with pytest.raises(InputError, match=r"^k = 7 neighbours asked for, but the memory has 6$"):
        knn_accuracy(memory, labels, memory, labels, 7, 0.07, 2)
    memory[2, 1] = float("nan")
    with pytest.raises(InputError, match="NaN or inf") as error:
        knn_accuracy(memory, labels, memory, labels, 2, 0.07, 2)
    assert "\n" not in str(error.value)


def test_the_settings_are_named_as_results_json_keys_them():
    assert [knn_name(20, 0.07), knn_name(200, 0.1)] == ["k20_t0.07", "k200_t0.1"]


def test_knn_with_too_few_training_images_and_clusters_with_too_few_images_are_refused():
    check_evaluable(("linear", "knn", "cluster"), 200, 10, 10)  # just enough of each
    check_evaluable(("linear",), 3, 1, 10)  # the linear probe alone needs neither
    with pytest.raises(InputError, match=r"takes the 200 nearest .* has only 199; use more"):
        check_evaluable(("knn",), 199, 10, 10)
    with pytest.raises(InputError, match="makes 10 clusters of the validation split, which"):
        check_evaluable(("cluster",), 10_000, 9, 10)


def test_layer_features_take_the_centre_crop():
    n, dims = 5, 3
    values = torch.arange(n * 10 * dims, dtype=torch.float16).view(n * 10, dims) % 97
    cache = FeatureCache({"conv1": values}, torch.zeros(n, dtype=torch.long), crops=10)
    centre = layer_features(cache, "conv1", rows=2)
    assert centre.dtype == torch.float32
    assert torch.equal(centre, values.float().view(n, 10, dims)[:, 4])  # not the top-left
    single = FeatureCache({"conv1": values}, torch.zeros(n * 10, dtype=torch.long))
    assert torch.equal(layer_features(single, "conv1", rows=3), values.float())
    with pytest.raises(InputError, match=r"^the feature cache has no conv2 .*holds conv1\)$"):
        layer_features(cache, "conv2")


# A known wrong partition: three tight blobs, A all class 0, B all class 1, C half class 1
# and half class 2. Contingency (class x blob): [[4, 0, 0], [0, 4, 2], [0, 0, 2]], N = 12.
TRUTH = np.array([0] * 4 + [1] * 4 + [1, 1, 2, 2])
BLOBS = np.array([0] * 4 + [1] * 4 + [2] * 4)


def entropy(sizes: list[int]) -> float:
    total = sum(sizes)
    return -sum(s / total * math.log(s / total) for s in sizes)


def expected_mutual_information(rows: list[int], cols: list[int]) -> float:
    """E[MI] over partitions with these sizes (Vinh, Epps & Bailey 2010): each cell count
    is hypergeometric."""
    n = sum(rows)
    total = 0.0
    for a in rows:
        for b in cols:
            for count in range(max(1, a + b - n), min(a, b) + 1):
                p = math.comb(b, count) * math.comb(n - b, a - count) / math.comb(n, a)
                total += p * count / n * math.log(n * count / (a * b))
    return total


def test_a_known_partition_scores_one_and_a_known_wrong_one_as_computed_by_hand():
    renamed = (BLOBS + 1) % 3  # the same partition under other cluster ids
    assert partition_scores(BLOBS, renamed) == pytest.approx({"nmi": 1, "ami": 1, "ari": 1})
    scores = partition_scores(TRUTH, BLOBS)
    mi = 0.5 * math.log(3) + math.log(2) / 3  # sum of n_ij / N log(N n_ij / (a_i b_j))
    h_class, h_blob = entropy([4, 6, 2]), math.log(3)
    mean_h = (h_class + h_blob) / 2  # the arithmetic-mean normalisation
    emi = expected_mutual_information([4, 6, 2], [4, 4, 4])
    pairs, rows, cols = 6 + 6 + 1 + 1, 6 + 15 + 1, 6 + 6 + 6  # pairs together in both, ...
    expected = rows * cols / math.comb(12, 2)
    ari = (pairs - expected) / ((rows + cols) / 2 - expected)
    assert ari == pytest.approx(4 / 7)
    assert scores["nmi"] == pytest.approx(mi / mean_h, abs=1e-12)
    assert scores["ami"] == pytest.approx((mi - emi) / (mean_h - emi), abs=1e-12)
    assert scores["ari"] == pytest.approx(ari, abs=1e-12)
    assert 0 < scores["ami"] < scores["nmi"] < 1


def backends() -> list[str]:
    names = ["torch"]
    try:
        import faiss  # noqa: F401

        names.append("faiss")
    except Exception:  # not installed, or its CUDA libraries missing: torch alone
        pass
    return names


@pytest.mark.parametrize("name", backends())
def test_two_separated_classes_score_one_on_every_restart_on_either_backend(name):
    # Two far-apart blobs: k-means from any two distinct starting points finds them.
    x, labels = blobs(40, 2, 8, spread=0.05, seed=3)
    backend = resolve_backend(name, torch.device("cpu"))
    scores = cluster_quality(x, labels, 2, seed=0, layer="conv1", backend=backend)
    for metric in ("nmi", "ami", "ari"):
        assert scores[metric] == pytest.approx(1.0, abs=1e-9)
        assert scores[f"{metric}_restarts"] == pytest.approx([1.0] * 3, abs=1e-9)


def test_the_clustering_is_the_shared_kmeans_on_normalised_rows_with_the_eval_seeds():
    x, labels = blobs(50, 4, 8, spread=1.5, seed=5)
    backend = resolve_backend("torch", torch.device("cpu"))
    scores = cluster_quality(x, labels, 4, seed=2, layer="conv3", backend=backend)
    unit = torch.nn.functional.normalize(x.float(), dim=1)
    for restart in range(3):
        seed = seeds.int_seed(2, "eval_cluster", zlib.crc32(b"conv3"), restart) % 2**31
        assert cluster_seed(2, "conv3", restart) == seed
        found, _ = run_kmeans(backend, unit, 4, 20, seed)
        expected = partition_scores(labels.numpy(), found)
        for metric in ("nmi", "ami", "ari"):
            assert scores[f"{metric}_restarts"][restart] == pytest.approx(expected[metric])
    assert scores["nmi"] == pytest.approx(sum(scores["nmi_restarts"]) / 3)


def test_labels_independent_of_the_clusters_score_about_zero():
    x, _ = blobs(300, 3, 8, spread=0.05, seed=5)
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 3, len(x)))
    scores = cluster_quality(x, labels, 3, seed=0, layer="conv1", restarts=1)
    assert abs(scores["ami"]) < 0.01 and abs(scores["ari"]) < 0.01 and scores["nmi"] < 0.01


def test_restarts_are_a_pure_function_of_seed_layer_and_restart():
    # Points spread evenly on a circle: where k-means cuts it depends on the seeding.
    x = on_circle([360 * i / 240 + 0.3 for i in range(240)])
    labels = torch.arange(4).repeat_interleave(60)
    backend = resolve_backend("torch", torch.device("cpu"))
    first = cluster_quality(x, labels, 4, seed=0, layer="conv1", backend=backend)
    assert cluster_quality(x, labels, 4, seed=0, layer="conv1", backend=backend) == first
    two = cluster_quality(x, labels, 4, seed=0, layer="conv1", restarts=2, backend=backend)
    assert two["nmi_restarts"] == first["nmi_restarts"][:2]
    assert len(set(first["ari_restarts"])) > 1  # each restart its own draw
    other_seed = cluster_quality(x, labels, 4, seed=1, layer="conv1", backend=backend)
    other_layer = cluster_quality(x, labels, 4, seed=0, layer="conv2", backend=backend)
    assert other_seed["ari_restarts"] != first["ari_restarts"]
    assert other_layer["ari_restarts"] != first["ari_restarts"]


def test_bad_cluster_input_is_one_line():
    x, labels = blobs(2, 2, 4, spread=0.1, seed=0)
    with pytest.raises(InputError, match=r"^k-means with 5 clusters needs 2\.\.4 rows$"):
        cluster_quality(x, labels, 5, seed=0, layer="conv1")
    x[1, 0] = float("inf")
    with pytest.raises(InputError, match="NaN or inf"):
        cluster_quality(x, labels, 2, seed=0, layer="conv1")
