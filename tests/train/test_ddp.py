"""Two CPU processes under torchrun (gloo): identical ranks, each sample once per epoch, and
the same steps per epoch as the same command on one process (the batch is global)."""

import json
from pathlib import Path

import pytest

from sslx.train.checkpoint import load_checkpoint


def _launch(torchrun, nproc: int, shards: Path, tmp_path: Path) -> list[dict]:
    results = tmp_path / f"results{nproc}"
    results.mkdir()
    worker = Path(__file__).with_name("ddp_worker.py")
    done = torchrun(worker, shards, tmp_path / f"run{nproc}", results, nproc=nproc)
    if nproc == 2:
        assert "2 rank(s), global batch 24 (12 per rank)" in done.stderr
        assert done.stderr.count("global batch") == 1  # said once, in the start-up summary
    return [json.loads((results / f"rank{r}.json").read_text()) for r in range(nproc)]


@pytest.mark.slow  # two torch processes: ~50 s; CI runs it with the slow tests
def test_two_process_ddp_on_cpu(shards, tmp_path, torchrun):
    ranks = _launch(torchrun, 2, shards, tmp_path)
    single = _launch(torchrun, 1, shards, tmp_path)
    # 240 samples, global batch 24 (12 per rank): 10 steps per epoch on 1 or 2 ranks.
    assert single[0]["steps"] == ranks[0]["steps"] == ranks[1]["steps"] == 20
    assert len(single[0]["seen"]) == 2 * 240
    assert ranks[0]["param_sha"] == ranks[1]["param_sha"]
    for epoch in range(2):
        seen = [i for r in ranks for i in r["seen"][epoch * 120 : (epoch + 1) * 120]]
        assert len(seen) == len(set(seen)) == 240 and set(seen) == set(range(240))
    assert set(ranks[0]["seen"][:120]) != set(ranks[0]["seen"][120:])  # reshuffled per epoch
    payload = load_checkpoint(tmp_path / "run2")
    assert payload["layout"] == {"world_size": 2, "workers": 1}
    assert payload["progress"]["finished"]
