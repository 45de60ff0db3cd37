"""Run by test_deepcluster_ddp.py under torchrun: DeepCluster on 2 ranks, record each rank."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import train
from sslx.train.methods.deepcluster.method import DeepCluster

SEEN: list[list[int]] = []
_forward = DeepCluster.forward


def recording_forward(self, images, batch):
    """DeepCluster's step, remembering the (index, label) pairs of every batch."""
    SEEN.extend(zip(batch.index.tolist(), batch.label.tolist(), strict=True))
    return _forward(self, images, batch)


def config(shards: str) -> TrainConfig:
    return TrainConfig.for_method(
        "deepcluster",
        shards=shards,
        input_size=64,
        conv1_stride=4,
        classifier_width=32,
        batch_size=48,  # the global batch: 24 per rank on 2 ranks
        epochs=2,
        clusters=12,
        pca_dim=16,
        kmeans_backend="torch",
    )


def main(shards: str, out: str, result_dir: str) -> None:
    DeepCluster.forward = recording_forward
    result = train(
        config(shards),
        Path(out),
        RunOptions(workers=1, log_every=2, quiet=True),
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
