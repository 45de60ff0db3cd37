"""Run by test_ddp.py under torchrun: one step of each multi-view method on a fixed global
batch, split over the ranks; saves the loss, the averaged gradients and the statistics
(BatchNorm's, DINO's centre) that rank 0 ends with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sslx.common.views import ViewSpec, draw_view
from sslx.train import distributed
from sslx.train.batches import Batch, View
from sslx.train.config import TrainConfig
from sslx.train.loop import build_method

SMALL = {
    "simclr": {"hidden_dim": 32, "projection_dim": 16},
    "byol": {"hidden_dim": 32, "projection_dim": 16},
    "simsiam": {"projection_dim": 32, "prediction_dim": 8},
    "dino": {"out_dim": 64, "local_crops": 1},
}
GLOBAL_BATCH = 16


def global_batch(views: tuple[ViewSpec, ...]) -> Batch:
    """Random 32-px images with each view's draws: the same on every rank."""
    g = np.random.default_rng(0)
    images = g.integers(0, 256, (GLOBAL_BATCH, 32, 32, 3), dtype=np.uint8)
    out = []
    for v, spec in enumerate(views):
        rows = [draw_view(0, 0, i, v, 32, 32, spec)[1] for i in range(GLOBAL_BATCH)]
        out.append(View.of(list(images), rows, 32))
    return Batch.of([], range(GLOBAL_BATCH), views=out)


def main(result_dir: str) -> None:
    device = torch.device("cpu")
    dist = distributed.setup(device)
    rank, world = dist.rank, dist.world_size
    results = {}
    for method in SMALL:
        config = TrainConfig.for_method(
            method, shards="S", input_size=32, conv1_stride=2, classifier_width=32, **SMALL[method]
        )
        model = build_method(config)
        for m in model.modules():  # dropout masks differ by rank; the test is about statistics
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        batch = global_batch(model.views(config.crop, 32))
        share = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
        local = Batch(
            batch.image[share],
            batch.index[share],
            views=[View(v.image[share], v.params[share]) for v in batch.views],
        ).to(device)
        wrapped = DistributedDataParallel(model) if dist.enabled else model
        output = wrapped(local.image, local)
        output.loss.backward()
        loss = distributed.all_reduce_sum(output.loss.detach().clone()) / world
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        stats = {n: b.clone() for n, b in model.named_buffers() if b.dtype.is_floating_point}
        results[method] = {"loss": loss, "grads": grads, "buffers": stats}
    if rank == 0:
        torch.save(results, Path(result_dir) / f"world{world}.pt")
    distributed.teardown()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1])
