"""k-means (`sslx.common.kmeans`): the backend choice, FAISS's GPU path only when it works
and said so; the torch backend against FAISS, its seeding and its empty-cluster rule."""

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sslx.common import kmeans
from sslx.common.kmeans import (
    faiss_gpu_problem,
    kmeans_faiss,
    kmeans_torch,
    resolve_backend,
    split_empty,
)
from sslx.errors import InputError
from sslx.train.methods.deepcluster.spec import KMEANS_BACKENDS

CUDA0 = torch.device("cuda", 0)


def test_faiss_gpu_probe_answers_without_a_gpu():
    pytest.importorskip("faiss")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the gpu tests cover the working path")
    problem = faiss_gpu_problem(0)
    assert isinstance(problem, str) and problem


def test_auto_uses_faiss_on_the_training_gpu_when_it_works(monkeypatch):
    pytest.importorskip("faiss")
    monkeypatch.setitem(kmeans._GPU_PROBLEMS, 1, None)
    backend = resolve_backend("auto", torch.device("cuda", 1))
    assert (backend.name, backend.device, backend.gpu) == ("faiss", torch.device("cuda", 1), 1)
    assert "works" in backend.reason


def test_a_broken_faiss_gpu_path_falls_back_with_one_line(monkeypatch, capsys):
    pytest.importorskip("faiss")
    why = "a test search failed: RuntimeError: CUDA error 35 (test)"
    monkeypatch.setitem(kmeans._GPU_PROBLEMS, 0, why)
    monkeypatch.setattr(kmeans, "_TOLD", set())
    first = resolve_backend("auto", CUDA0)
    assert first == resolve_backend("auto", CUDA0)  # every epoch asks again
    assert (first.name, first.device, first.gpu) == ("torch", CUDA0, 0)
    assert why in first.reason
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and why in err[0] and "torch on cuda:0" in err[0]
    asked = resolve_backend("faiss", CUDA0)  # asked for FAISS: it runs, on the CPU
    assert (asked.name, asked.gpu) == ("faiss", None) and why in asked.reason


def test_cpu_training_keeps_faiss_on_the_cpu_and_torch_when_faiss_is_missing(monkeypatch):
    cpu = torch.device("cpu")
    if kmeans._faiss() is not None:
        auto = resolve_backend("auto", cpu)
        assert (auto.name, auto.device, auto.gpu) == ("faiss", cpu, None)
    monkeypatch.setattr(kmeans, "_faiss", lambda: None)
    assert resolve_backend("auto", cpu).name == "torch"
    assert resolve_backend("torch", CUDA0).device == CUDA0
    with pytest.raises(InputError, match="faiss is not installed"):
        resolve_backend("faiss", cpu)
    with pytest.raises(InputError, match="unknown k-means backend"):
        resolve_backend("nope", cpu)


@pytest.fixture
def broken_faiss(monkeypatch):
    """faiss-gpu without its CUDA 12 libraries: the import itself raises RuntimeError."""
    real = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "faiss":
            raise RuntimeError("libcublas.so.12: cannot open shared object file\nmore")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(kmeans, "_FAISS_IMPORT", {})
    monkeypatch.setattr(kmeans, "_GPU_PROBLEMS", {})
    monkeypatch.setattr(kmeans, "_TOLD", set())


def test_a_faiss_that_fails_to_load_leaves_deepcluster_on_torch_with_one_line(broken_faiss, capsys):
    assert resolve_backend("torch", CUDA0).name == "torch"
    assert kmeans._FAISS_IMPORT == {}  # an explicit torch never imports FAISS
    cpu = torch.device("cpu")
    for device in (cpu, CUDA0):
        backend = resolve_backend("auto", device)
        assert (backend.name, backend.device) == ("torch", device)
        assert "RuntimeError: libcublas.so.12" in backend.reason
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("sslx: k-means backend: auto") for line in err)
    with pytest.raises(InputError, match="faiss is installed but fails to load"):
        resolve_backend("faiss", cpu)


def test_the_gpu_benchmark_reports_a_faiss_that_fails_to_load(broken_faiss):
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        from gpu_report import environment
    finally:
        sys.path.pop(0)
    line = environment(torch.device("cpu"), workers=1, quick=True)
    assert "faiss unusable: faiss is installed but fails to load (RuntimeError" in line


def blobs(n: int, d: int, centres: int, seed: int = 0, spread: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, d))
    labels = rng.integers(0, centres, n)
    return (means[labels] + spread * rng.normal(size=(n, d))).astype(np.float32)


def test_torch_and_faiss_kmeans_reach_the_same_objective():
    pytest.importorskip("faiss")
    x = blobs(4000, 16, 40)
    _, faiss_objective = kmeans_faiss(x, 40, 20, seed=7)
    labels, torch_objective = kmeans_torch(torch.from_numpy(x), 40, 20, seed=7)
    assert abs(torch_objective - faiss_objective) / faiss_objective < 0.05
    assert labels.shape == (4000,) and labels.dtype == np.int64
    # The objective is the sum of squared distances to the assigned centroids.
    centroids = np.stack([x[labels == c].mean(0) for c in np.unique(labels)])
    lookup = {c: i for i, c in enumerate(np.unique(labels))}
    recomputed = ((x - centroids[[lookup[c] for c in labels]]) ** 2).sum()
    assert recomputed == pytest.approx(torch_objective, rel=1e-3)


def test_torch_kmeans_is_seeded():
    x = torch.from_numpy(blobs(1000, 8, 10))
    a, _ = kmeans_torch(x, 10, 5, seed=1)
    b, _ = kmeans_torch(x, 10, 5, seed=1)
    c, _ = kmeans_torch(x, 10, 1, seed=2)
    d, _ = kmeans_torch(x, 10, 1, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(c, d)


def test_empty_clusters_are_split_from_a_populated_one():
    centroids = torch.tensor([[9.0, 9.0], [1.0, 2.0], [5.0, 5.0]])
    counts = np.array([0.0, 10.0, 1.0])  # cluster 2 has one point: it cannot be split
    assert split_empty(centroids, counts, np.random.default_rng(0)) == 1
    eps = 1 / 1024
    torch.testing.assert_close(centroids[0], torch.tensor([1 + eps, 2 * (1 - eps)]))
    torch.testing.assert_close(centroids[1], torch.tensor([1 - eps, 2 * (1 + eps)]))
    assert counts.tolist() == [5.0, 5.0, 1.0]


def test_the_spec_offers_the_backends_that_resolve_backend_implements():
    # The spec spells them itself so that --help stays torch-free.
    assert KMEANS_BACKENDS == kmeans.BACKENDS
