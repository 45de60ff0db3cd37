"""CUDA-only checks (`pytest -m gpu`): bf16 channels_last steps of every method through the
loop, torch k-means on CUDA against the CPU, and an NCCL process group."""

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist

from sslx.common.device import pick_device
from sslx.common.kmeans import kmeans_torch
from sslx.train import distributed
from sslx.train.config import RunOptions, TrainConfig

pytestmark = pytest.mark.gpu


def _config(shards, method: str, size: int = 224, **options) -> TrainConfig:
    return TrainConfig.for_method(
        method,
        shards="" if method == "supervised" else str(shards),
        batch_size=16,
        epochs=1,
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-5,
        nesterov=False,
        lr_milestones=(),
        lr_gamma=0.1,
        input_size=size,
        classifier_width=256,
        sobel=False,
        **options,
    )


def _image_folder(root, classes: int = 2, per_class: int = 20):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)
            cv2.imwrite(str(root / f"class{c}" / f"{i}.jpg"), image)
    return root


def _train(config, out):
    from sslx.train.loop import train

    options = RunOptions(device="cuda", workers=1, max_steps=3, log_every=1, quiet=True)
    return train(config, out, options)


@pytest.mark.parametrize("method", ["rotnet", "deepcluster", "bigan", "supervised"])
def test_bf16_channels_last_steps_of_each_method(method, shards, tmp_path):
    options = {}
    size = 224
    if method == "deepcluster":
        options = {"clusters": 12, "pca_dim": 16}  # auto backend: FAISS's GPU or torch
    if method == "bigan":
        size = 64
    if method == "supervised":
        options = {"data_dir": str(_image_folder(tmp_path / "labelled"))}
    result = _train(_config(shards, method, size, **options), tmp_path / "run")
    assert result.stopped == "max_steps" and result.progress.global_step == 3
    weight = result.method.backbone.convs["conv2"][0].weight
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.isfinite(p).all() for p in result.method.parameters())


def test_torch_kmeans_on_cuda_assigns_like_on_the_cpu():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(20, 32, generator=g) * 10
    x = means[torch.randint(0, 20, (5000,), generator=g)] + torch.randn(5000, 32, generator=g)
    on_cpu, objective_cpu = kmeans_torch(x, 20, 10, seed=1)
    on_gpu, objective_gpu = kmeans_torch(x.cuda(), 20, 10, seed=1)
    assert np.array_equal(on_cpu, on_gpu)
    assert objective_gpu == pytest.approx(objective_cpu, rel=1e-4)


def test_one_rank_nccl_group_reduces_gathers_and_broadcasts(tmp_path):
    device = pick_device("cuda")
    torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl",
        init_method=f"file://{tmp_path / 'store'}",
        rank=0,
        world_size=1,
        device_id=device,
    )
    try:
        values = distributed.all_reduce_sum(torch.arange(4.0, device=device))
        assert values.tolist() == [0.0, 1.0, 2.0, 3.0]
        rows = torch.randn(5, 3, device=device)
        torch.testing.assert_close(distributed.gather_rows(rows, [5]), rows)
        assert distributed.broadcast(torch.ones(2, device=device)).tolist() == [1.0, 1.0]
    finally:
        dist.destroy_process_group()


def test_faiss_gpu_path_is_probed_and_used_on_this_gpu():
    pytest.importorskip("faiss")
    from sslx.common.kmeans import faiss_gpu_problem
    from sslx.train.methods.deepcluster.clustering import cluster

    x = torch.randn(2000, 64, device="cuda")
    result = cluster(x, 10, pca_dim=16, iterations=5)
    problem = faiss_gpu_problem(torch.cuda.current_device())
    expected = ("faiss", "cuda") if problem is None else ("torch", "cuda")
    assert (result.backend.name, result.backend.device.type) == expected, result.backend.reason
    assert result.objective > 0
