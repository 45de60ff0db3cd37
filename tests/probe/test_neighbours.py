"""The probe's evaluations on data whose answers are known by hand: what kNN and k-means
may run on, the centre crop of a ten-crop cache, and k-means cluster quality. The cluster
scores of known partitions are computed here from their formulas, not by scikit-learn."""

from __future__ import annotations

import math
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from sslx import seeds
from sslx.common.kmeans import resolve_backend, run_kmeans
from sslx.errors import InputError
from sslx.probe.features import FeatureCache
from sslx.probe.neighbours import (
    check_evaluable,
    cluster_quality,
    cluster_seed,
    layer_features,
    partition_scores,
)

sys.path.insert(0, str(Path(__file__).parents[1]))
from toy_features import blobs, on_circle


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
