"""Run by test_deepcluster_ddp.py under torchrun: DeepCluster on 2 ranks, record each rank."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from sslx.train.alexnet import ModelConfig
from sslx.train.config import OptimConfig, RunOptions, TrainConfig
from sslx.train.loop import train
from sslx.train.methods import register
from sslx.train.methods.deepcluster import DeepCluster

SEEN: list[list[int]] = []


@register
class RecordingDeepCluster(DeepCluster):
    """DeepCluster that remembers the (index, label) pairs of every batch it trains on."""

    name = "deepcluster-recording"

    def forward(self, images, batch):
        SEEN.extend(zip(batch["index"].tolist(), batch["label"].tolist(), strict=True))
        return super().forward(images, batch)


def config(shards: str, method: str) -> TrainConfig:
    return TrainConfig(
        shards=shards,
        method=method,
        model=ModelConfig(input_size=64, conv1_stride=4, classifier_width=32, sobel=True),
        optim=OptimConfig(
            batch_size=48,  # the global batch: 24 per rank on 2 ranks
            epochs=2,
            lr=0.05,
            momentum=0.9,
            weight_decay=1e-5,
            nesterov=False,
            lr_milestones=(),
            lr_gamma=0.1,
        ),
        method_options={"clusters": 12, "pca_dim": 16, "kmeans_backend": "torch"},
    )


def main(shards: str, out: str, result_dir: str) -> None:
    result = train(
        config(shards, "deepcluster-recording"),
        Path(out),
        RunOptions(workers=1, log_every=2, progress=False),
    )
    rank = int(os.environ["RANK"])
    params = torch.cat([p.detach().flatten() for p in result.method.parameters()])
    record = {
        "rank": rank,
        "seen": SEEN,
        "steps": result.progress.global_step,
        "param_sha": hashlib.sha256(params.numpy().tobytes()).hexdigest(),
        "assignments": result.method.assignments.tolist(),
    }
    (Path(result_dir) / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:4])
