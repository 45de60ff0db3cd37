"""The process group's setup, without a GPU."""

from datetime import timedelta

import pytest
import torch

from sslx.errors import InputError
from sslx.train import distributed
from sslx.train.config import RunOptions


def test_the_process_group_gets_the_timeout(monkeypatch):
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    got = distributed.setup(torch.device("cpu"), timeout_minutes=90)
    assert got == distributed.Dist(rank=1, world_size=2, local_rank=1)
    assert calls == [{"backend": "gloo", "timeout": timedelta(minutes=90)}]
    distributed.setup(torch.device("cpu"))
    assert calls[1]["timeout"] == timedelta(minutes=distributed.DEFAULT_TIMEOUT_MINUTES)
    with pytest.raises(InputError, match="--dist-timeout-minutes must be > 0"):
        RunOptions(dist_timeout_minutes=0)


def test_an_nccl_group_is_bound_to_the_ranks_gpu_at_init(monkeypatch):
    calls, bound = [], []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setattr(distributed.torch.cuda, "set_device", bound.append)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    gpu = torch.device("cuda", 1)
    distributed.setup(gpu, timeout_minutes=5)
    assert bound == [gpu]
    assert calls == [{"backend": "nccl", "timeout": timedelta(minutes=5), "device_id": gpu}]
