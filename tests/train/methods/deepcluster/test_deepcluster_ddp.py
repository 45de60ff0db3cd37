"""DeepCluster on two CPU processes (gloo): rank 0 clusters the gathered features."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sslx.train.config import RunOptions
from sslx.train.loop import train
from sslx.train.methods.deepcluster.method import clusters_path, uniform_label_draws


@pytest.mark.slow  # two torch processes: ~50 s; CI runs it with the slow tests
def test_two_process_deepcluster_on_cpu(shards, tmp_path, torchrun):
    results = tmp_path / "results"
    results.mkdir()
    worker = Path(__file__).with_name("ddp_deepcluster_worker.py")
    torchrun(worker, shards, tmp_path / "run", results, timeout=900)
    ranks = [json.loads((results / f"rank{r}.json").read_text()) for r in range(2)]
    # 240 samples, global batch 48 (24 per rank on 2 ranks): 5 steps per epoch, 2 epochs.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 10
    assert ranks[0]["param_sha"] == ranks[1]["param_sha"]
    assert ranks[0]["assignments"] == ranks[1]["assignments"]  # broadcast from rank 0
    last = np.load(clusters_path(tmp_path / "run", 1))
    assert np.array_equal(last, ranks[0]["assignments"])
    # Each rank trained on its contiguous half of the epoch's draws, with their labels.
    draws = uniform_label_draws(last.astype(np.int64), 240, seed=0, epoch=1)
    for r, rank in enumerate(ranks):
        seen = rank["seen"][120:]
        assert [i for i, _ in seen] == draws[r * 120 : (r + 1) * 120].tolist()
        assert all(label == last[i] for i, label in seen)
    # The gathered features cluster exactly as one process clusters them.
    sys.path.insert(0, str(Path(__file__).parent))
    from ddp_deepcluster_worker import config

    single = tmp_path / "single"
    train(config(str(shards)), single, RunOptions(workers=0, max_steps=1, quiet=True))
    assert np.array_equal(
        np.load(clusters_path(single, 0)), np.load(clusters_path(tmp_path / "run", 0))
    )
