"""The k-means backend choice: FAISS's GPU path only when it works, and said so."""

import builtins
import sys
from pathlib import Path

import pytest
import torch

from sslx.errors import InputError
from sslx.train.methods.deepcluster import kmeans
from sslx.train.methods.deepcluster.kmeans import faiss_gpu_problem, resolve_backend

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
    sys.path.insert(0, str(Path(__file__).parents[4] / "benchmarks"))
    try:
        from gpu_report import environment
    finally:
        sys.path.pop(0)
    line = environment(torch.device("cpu"), workers=1, quick=True)
    assert "faiss unusable: faiss is installed but fails to load (RuntimeError" in line


def test_the_clustering_step_hands_its_pinned_store_back(monkeypatch):
    """torch keeps freed pinned blocks for reuse; at full size that would hold 10.5 GB of
    pinned host memory between clustering steps, so the step empties the cache."""
    from sslx.train.methods.deepcluster import clustering

    emptied = []
    monkeypatch.setattr(clustering.torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(clustering.torch._C, "_host_emptyCache", lambda: emptied.append(1))
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    clustering.cluster(x, 5, pca_dim=4, iterations=3, backend="torch")
    assert emptied == [1]
