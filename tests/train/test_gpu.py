"""CUDA-only checks (`pytest -m gpu`): bf16 channels_last steps of every method through the
loop, torch.compile, torch k-means on CUDA against the CPU, and an NCCL process group."""

import json

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist

from sslx.common.device import pick_device
from sslx.train import distributed
from sslx.train.config import RunOptions, TrainConfig
from sslx.train.methods.deepcluster.kmeans import kmeans_torch

pytestmark = pytest.mark.gpu


def _config(shards, method: str, size: int = 224, lr: float = 0.01, **options) -> TrainConfig:
    return TrainConfig.for_method(
        method,
        shards="" if method == "supervised" else str(shards),
        batch_size=16,
        epochs=1,
        lr=lr,
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


def _train(config, out, compile_: bool = False):
    from sslx.train.loop import train

    options = RunOptions(
        device="cuda", workers=1, max_steps=3, log_every=1, quiet=True, compile=compile_
    )
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


def test_compiled_steps_train_like_eager_ones(shards, tmp_path, monkeypatch):
    """With dropout off (inductor draws its own masks, so with it the runs differ by
    design), the compiled steps move the weights as the eager ones do: the two updates
    differ by under 10% of their size, where bf16's 8-bit mantissa (0.4% per rounding)
    over 3 steps allows a few percent, and the losses agree to 2%. The updates are checked
    to be large, so that a step that did nothing cannot pass."""
    from sslx.train.loop import build_method

    monkeypatch.setattr(torch.nn.Dropout, "forward", lambda self, x: x)
    config = _config(shards, "rotnet", lr=0.05)
    start = [p.detach().clone() for p in build_method(config, from_init=True).parameters()]
    eager = _train(config, tmp_path / "eager")
    compiled = _train(config, tmp_path / "compiled", compile_=True)
    assert compiled.stopped == "max_steps"
    eager_update, compiled_update = (_update(r.method, start) for r in (eager, compiled))
    size = eager_update.norm()
    assert size > 1e-2 * torch.cat([s.flatten() for s in start]).norm(), size
    assert (compiled_update - eager_update).norm() < 0.1 * size
    losses = [_losses(tmp_path / run) for run in ("eager", "compiled")]
    assert len(losses[0]) == 3 and losses[1] == pytest.approx(losses[0], rel=0.02), losses


def _update(method, start: list[torch.Tensor]) -> torch.Tensor:
    moved = zip(method.parameters(), start, strict=True)
    return torch.cat([(p.detach().cpu() - s).flatten() for p, s in moved])


def _losses(run) -> list[float]:
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r.get("event") is None and "loss" in r]


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
    from sslx.train.methods.deepcluster.clustering import cluster
    from sslx.train.methods.deepcluster.kmeans import faiss_gpu_problem

    x = torch.randn(2000, 64, device="cuda")
    result = cluster(x, 10, pca_dim=16, iterations=5)
    problem = faiss_gpu_problem(torch.cuda.current_device())
    expected = ("faiss", "cuda") if problem is None else ("torch", "cuda")
    assert (result.backend.name, result.backend.device.type) == expected, result.backend.reason
    assert result.objective > 0
