"""Two CPU processes under torchrun (gloo): identical ranks, each sample once per epoch."""

import json
import subprocess
import sys
from pathlib import Path

from sslx.train.checkpoint import load_checkpoint


def test_two_process_ddp_on_cpu(shards, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(worker), str(shards), str(tmp_path / "run"), str(results),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((results / f"rank{r}.json").read_text()) for r in range(2)]
    # 240 samples, 2 ranks, batch 24: 5 steps per rank per epoch, 2 epochs.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 10
    assert ranks[0]["param_sha"] == ranks[1]["param_sha"]
    for epoch in range(2):
        seen = [i for r in ranks for i in r["seen"][epoch * 120 : (epoch + 1) * 120]]
        assert len(seen) == len(set(seen)) == 240 and set(seen) == set(range(240))
    assert set(ranks[0]["seen"][:120]) != set(ranks[0]["seen"][120:])  # reshuffled per epoch
    payload = load_checkpoint(tmp_path / "run")
    assert payload["layout"] == {"world_size": 2, "workers": 1}
    assert payload["progress"]["finished"]
