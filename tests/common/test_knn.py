"""Weighted kNN (DINO's protocol) on data whose answers are known by hand. Exact
comparisons only where every value is exactly representable (axis vectors, integers);
elsewhere the margins are checked to dwarf float32 rounding, so no BLAS kernel can change
an outcome."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from sslx.common import knn
from sslx.common.knn import (
    _class_scores,
    knn_accuracies,
    knn_accuracy,
    knn_name,
    nearest,
    top_k,
)
from sslx.errors import InputError

sys.path.insert(0, str(Path(__file__).parents[1]))
from toy_features import blobs, on_circle

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


def test_nearest_yields_each_chunks_neighbours_in_similarity_then_index_order():
    memory = on_circle([30.0, 10.0, 10.0, -20.0, 90.0])  # rows 1 and 2 tie exactly
    queries = on_circle([0.0, 80.0, 12.0])
    chunks = list(nearest(memory, queries, 3, chunk=2))
    assert [len(index) for _, index in chunks] == [2, 1]
    index = torch.cat([i for _, i in chunks])
    assert index.tolist() == [[1, 2, 3], [4, 0, 1], [1, 2, 0]]
    values = torch.cat([v for v, _ in chunks])
    angles = {0: [10, 10, -20], 80: [90, 30, 10], 12: [10, 10, 30]}  # of each neighbour
    expected = [math.cos(math.radians(a - q)) for q, row in angles.items() for a in row]
    assert values.flatten().tolist() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(InputError, match=r"^k = 6 neighbours asked for, but the memory has 5$"):
        nearest(memory, queries, 6)  # refused at the call, before any search


# The bf16 screen (`nearest(screen=True)`): forced here, so it runs on any CPU (emulated
# bf16 where the CPU lacks it) and the tests do not depend on one machine's kernels.


def search(memory, queries, k, chunk, screen):
    found = list(nearest(memory, queries, k, chunk=chunk, screen=screen))
    return torch.cat([v for v, _ in found]), torch.cat([i for _, i in found])


def assert_same_neighbours(memory, queries, k, chunk):
    """The screen against the float32 search: the same values up to float32 rounding,
    and the same memory rows in the same order except where two of them tie within it
    (checked in float64)."""
    values, index = search(memory, queries, k, chunk, screen=True)
    exact_values, exact_index = search(memory, queries, k, chunk=512, screen=False)
    torch.testing.assert_close(values, exact_values, atol=2e-6, rtol=0)
    cosine = torch.nn.functional.normalize(queries.double(), dim=1) @ (
        torch.nn.functional.normalize(memory.double(), dim=1).T
    )
    rows, ranks = (index != exact_index).nonzero().unbind(1)
    ours, theirs = cosine[rows, index[rows, ranks]], cosine[rows, exact_index[rows, ranks]]
    assert ((ours - theirs).abs() < 1e-6).all()  # only near-ties may trade places
    return index, exact_index


@pytest.mark.parametrize(("k", "chunk"), [(1, 7), (5, 64), (20, 1000), (60, 33)])
def test_the_screen_finds_the_float32_searchs_neighbours(k, chunk):
    memory, _ = blobs(100, 6, 48, spread=2.0, seed=5)
    memory = torch.cat([memory, memory[::7]])  # exact duplicates: ties the index breaks
    queries, _ = blobs(40, 6, 48, spread=2.0, seed=105)
    assert_same_neighbours(memory, queries, k, chunk)


def test_the_screen_breaks_exact_ties_by_index_like_the_float32_search():
    # Small integers, and queries of norm 2 (normalised exactly): every float32 cosine
    # is computed exactly in both paths, so they must agree exactly, ties included.
    generator = torch.Generator().manual_seed(1)
    memory = torch.randint(0, 3, (400, 24), generator=generator).float()
    memory = torch.cat([memory, memory[:150], memory[:40]])  # many exact duplicates
    queries = torch.zeros(64, 24)
    queries[torch.arange(64), torch.arange(64) % 24] = 2.0
    queries[::3] = 0.0
    queries[::3, :4] = 1.0  # norm 2 as well
    for k in (1, 9, 50):
        for chunk in (16, 64):
            index, exact_index = assert_same_neighbours(memory, queries, k, chunk)
            assert torch.equal(index, exact_index)


def test_a_query_with_too_many_candidates_gets_its_whole_float32_row(monkeypatch):
    memory, _ = blobs(40, 4, 16, spread=1.0, seed=2)
    memory = torch.cat([memory, memory[:1].repeat(30, 1)])  # 31 copies of row 0
    queries = torch.cat([memory[:1], memory[160:161] + 0.5, memory[5:6]])
    monkeypatch.setattr(knn, "_CANDIDATES", 12)  # a cap of 12 for k = 3
    inverse = knn.row_norms(memory.float(), "m")[1]
    screen = knn._Screen(memory.float(), inverse)
    q = queries.float() * knn.row_norms(queries.float(), "q")[1][:, None]
    approx, slack = screen.approximate(q, 0.0)
    kth = approx.topk(3, dim=1).values[:, -1].double()
    counts = (approx >= screen.floors(kth, slack, 0.0)[:, None]).sum(1)
    assert counts[0] > 12 and counts[2] <= 12  # one query falls back, one does not
    index, _ = assert_same_neighbours(memory, queries, 3, chunk=3)
    assert index[0].tolist() == [0, 160, 161]  # 31 rows tie at 1: the lowest indices


def adversarial_unit_rows(n, dims, generator):
    """Positive rows whose elements all share one mantissa: bf16 rounds every element of
    a row in the same direction by nearly the most it can, so the errors of a product add
    up instead of cancelling."""
    exponent = torch.randint(-12, -4, (n, dims), generator=generator).double()
    rows = 2.0**exponent * (1 + 0.49 * 2**-7)
    return (rows / rows.norm(dim=1, keepdim=True)).float()


def test_the_bound_holds_for_many_bf16_products_of_9600_dims():
    generator = torch.Generator().manual_seed(0)
    dims = 9600
    base = adversarial_unit_rows(32, dims, generator)
    near = base.repeat(16, 1)  # near copies of the queries: cosines up to 1
    near = torch.where(torch.rand(near.shape, generator=generator) < 0.05, near * 2, near)
    cases = [(near, base), (torch.randn(512, dims, generator=generator), near[:64])]
    worst = []
    for memory, queries in cases:
        inverse = knn.row_norms(memory, "m")[1]
        screen = knn._Screen(memory, inverse)
        q = queries * knn.row_norms(queries, "q")[1][:, None]
        exact = q.double() @ (memory.double() * inverse.double()[:, None]).T
        for shift in (0.0, 0.5, -0.25, 0.875):  # bf16 values
            approx, slack = screen.approximate(q, shift)
            approx = approx.double()
            error = (approx + shift - exact).abs()
            worst.append((error / (slack[:, None] + screen.w * approx.abs())).max().item())
        float32 = (q @ memory.T) * inverse  # the float32 search's cosines
        assert (float32.double() - exact).abs().max() <= screen.e32
    assert max(worst) <= 1
    assert max(worst) > 0.3  # the adversarial rows come near it: it is not vacuous


def test_screening_is_the_default_only_where_bf16_is_fast(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert not knn.screening_pays(cpu, 45_000, 5_000, 200)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert knn.screening_pays(cpu, 45_000, 5_000, 200)
    assert not knn.screening_pays(cpu, 45_000, 6, 8)  # a few queries: the bf16 copy dominates
    assert not knn.screening_pays(cpu, 4_000, 5_000, 200)  # memory not much larger than k
    assert not knn.screening_pays(torch.device("cuda", 0), 45_000, 5_000, 200)
