"""Run by test_ddp.py under torchrun: train a few steps, record what each rank saw."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import train
from sslx.train.methods.rotnet.method import RotNet

SEEN: list[int] = []
_forward = RotNet.forward


def recording_forward(self, images, batch):
    """RotNet's step, remembering the sample indices of every batch it trains on."""
    SEEN.extend(batch.index.tolist())
    return _forward(self, images, batch)


def main(shards: str, out: str, result_dir: str) -> None:
    RotNet.forward = recording_forward
    config = TrainConfig.for_method(
        "rotnet",
        shards=shards,
        input_size=64,
        conv1_stride=4,
        classifier_width=32,
        batch_size=24,
        epochs=2,
        lr=0.05,
        lr_milestones=(),
        shuffle_buffer=32,
    )
    result = train(config, Path(out), RunOptions(workers=1, log_every=2))
    rank = int(__import__("os").environ["RANK"])
    params = torch.cat([p.detach().flatten() for p in result.method.parameters()])
    record = {
        "rank": rank,
        "seen": SEEN,
        "steps": result.progress.global_step,
        "param_sha": hashlib.sha256(params.numpy().tobytes()).hexdigest(),
    }
    (Path(result_dir) / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:4])
