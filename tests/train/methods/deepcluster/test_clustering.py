import numpy as np
import pytest
import torch

from sslx.train.methods.deepcluster.clustering import (
    FeatureStats,
    HostRows,
    cluster,
    fit_mask,
    l2_normalise,
    top_eigen,
)


def blobs(n: int, d: int, centres: int, seed: int = 0, spread: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, d))
    labels = rng.integers(0, centres, n)
    return (means[labels] + spread * rng.normal(size=(n, d))).astype(np.float32)


def test_pca_whitens_like_faiss_pcamatrix():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2000, 96)) @ rng.normal(size=(96, 96))).astype(np.float32)
    stats = FeatureStats(96, torch.device("cpu"))
    stats.add(torch.from_numpy(x))
    pca = stats.pca(32)
    ours = pca.apply(torch.from_numpy(x)).numpy()
    reference = faiss.PCAMatrix(96, 32, -0.5)
    reference.train(x)
    theirs = reference.apply(x)
    np.testing.assert_allclose(np.cov(ours.T, bias=True), np.eye(32), atol=1e-3)  # whitened
    # FAISS's outputs differ by a constant factor (it whitens the scatter matrix, not the
    # covariance), which the L2 normalisation removes; eigenvectors are defined up to sign.
    ours = l2_normalise(torch.from_numpy(ours)).numpy()
    theirs = l2_normalise(torch.from_numpy(theirs)).numpy()
    signs = np.sign((ours * theirs).sum(0))
    np.testing.assert_allclose(ours * signs, theirs, rtol=0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)


def test_subspace_iteration_finds_the_top_eigenvectors():
    rng = np.random.default_rng(1)
    scales = np.logspace(0, -2, 1200)
    x = torch.from_numpy(rng.normal(size=(3000, 1200)) * scales).float()
    cov = (x.T @ x / len(x)).double()
    values, vectors = top_eigen(cov, 64)  # d > 1024 on CPU: subspace iteration
    exact_values, exact_vectors = torch.linalg.eigh(cov)
    exact_values, exact_vectors = exact_values.flip(0)[:64], exact_vectors.flip(1)[:, :64]
    torch.testing.assert_close(values, exact_values, rtol=1e-3, atol=0)
    overlap = (vectors.T @ exact_vectors).norm() ** 2 / 64  # 1 when the subspaces agree
    assert overlap > 0.999


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_cluster_assigns_every_sample(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    x = torch.from_numpy(blobs(600, 48, 6, spread=0.2))
    result = cluster(x, 6, pca_dim=16, iterations=10, seed=0, backend=backend)
    assert result.backend.name == backend and result.assignments.shape == (600,)
    assert len(np.unique(result.assignments)) == 6 and result.objective > 0


def test_host_rows_keep_float16_precision_across_blocks_and_large_values(monkeypatch):
    monkeypatch.setattr(HostRows, "BLOCK_BYTES", 2 * 8 * 7)  # blocks of 7 rows of width 8
    x = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    x[3] *= 1e6  # far beyond float16's 65504: each row is scaled before rounding
    store = HostRows(30, 8, pin=False)
    for a in range(0, 30, 4):  # batches of 4 straddle the blocks of 7
        store.put(a, x[a : a + 4])
    assert len(store) == 30 and len(store.blocks) == 5
    back = torch.cat([store.get(a, min(a + 5, 30), torch.device("cpu")) for a in range(0, 30, 5)])
    assert back.dtype == torch.float32 and back.shape == x.shape
    torch.testing.assert_close(back, x, rtol=2**-11, atol=0)


def test_streamed_statistics_give_the_mean_and_covariance():
    x = torch.from_numpy(blobs(500, 12, 4)).double() * 3 + 10
    stats = FeatureStats(12, torch.device("cpu"))
    for chunk in x.float().split(64):
        stats.add(chunk)
    mean, cov = stats.mean_cov()
    torch.testing.assert_close(mean, x.float().double().mean(0))
    torch.testing.assert_close(cov, torch.cov(x.float().double().T, correction=0))
    # The subset fitted by --pca-fit-rows is a seeded random choice of exactly that size.
    keep = fit_mask(500, 100, seed=4)
    assert keep.sum() == 100 and torch.equal(keep, fit_mask(500, 100, seed=4))
    assert fit_mask(500, 0, seed=4) is None and fit_mask(500, 500, seed=4) is None


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
