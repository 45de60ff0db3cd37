"""Device choice, loader workers and the process group's timeout, without a GPU."""

from datetime import timedelta

import pytest
import torch

from sslx.errors import InputError
from sslx.train import distributed


def _gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_one_visible_gpu_is_used_whatever_the_local_rank(monkeypatch):
    _gpus(monkeypatch, 1)  # SLURM binding one GPU per task: each task sees cuda:0 only
    assert distributed.pick_device("auto", local_rank=3) == torch.device("cuda", 0)
    assert distributed.pick_device("cuda", local_rank=0) == torch.device("cuda", 0)


def test_several_visible_gpus_are_picked_by_local_rank(monkeypatch):
    _gpus(monkeypatch, 4)
    assert distributed.pick_device("cuda", local_rank=2) == torch.device("cuda", 2)
    assert distributed.pick_device("auto", local_rank=5) == torch.device("cuda", 1)


def test_no_gpu_means_cpu_or_a_clear_error(monkeypatch):
    _gpus(monkeypatch, 0)
    assert distributed.pick_device("auto", local_rank=1) == torch.device("cpu")
    with pytest.raises(InputError, match="no CUDA GPU is visible"):
        distributed.pick_device("cuda")


def test_loader_workers_share_the_usable_cores_between_local_gpus(monkeypatch):
    monkeypatch.setattr(distributed, "usable_cores", lambda: 16)
    cuda = torch.device("cuda", 0)
    assert distributed.default_workers(cuda, 1) == 15  # one core for the main process
    assert distributed.default_workers(cuda, 4) == 3
    assert distributed.default_workers(cuda, 8) == 1
    assert distributed.default_workers(cuda, 32) == 1  # never none
    assert distributed.default_workers(torch.device("cpu"), 1) == 1
    monkeypatch.setattr(distributed, "usable_cores", lambda: 128)
    assert distributed.default_workers(cuda, 1) == 127  # no fixed cap
    assert distributed.usable_cores() >= 1


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
    with pytest.raises(InputError, match="--dist-timeout-minutes must be positive"):
        distributed.setup(torch.device("cpu"), timeout_minutes=0)
