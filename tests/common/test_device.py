"""Device choice and loader workers, without a GPU."""

import pytest
import torch

from sslx.common import device
from sslx.errors import InputError


def _gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_one_visible_gpu_is_used_whatever_the_local_rank(monkeypatch):
    _gpus(monkeypatch, 1)  # SLURM binding one GPU per task: each task sees cuda:0 only
    assert device.pick_device("auto", local_rank=3) == torch.device("cuda", 0)
    assert device.pick_device("cuda", local_rank=0) == torch.device("cuda", 0)


def test_several_visible_gpus_are_picked_by_local_rank(monkeypatch):
    _gpus(monkeypatch, 4)
    assert device.pick_device("cuda", local_rank=2) == torch.device("cuda", 2)
    assert device.pick_device("auto", local_rank=5) == torch.device("cuda", 1)


def test_no_gpu_means_cpu_or_a_clear_error(monkeypatch):
    _gpus(monkeypatch, 0)
    assert device.pick_device("auto", local_rank=1) == torch.device("cpu")
    with pytest.raises(InputError, match="no CUDA GPU is visible"):
        device.pick_device("cuda")


def test_loader_workers_share_the_usable_cores_between_local_gpus(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 16)
    cuda = torch.device("cuda", 0)
    assert device.default_workers(cuda, 1) == 15  # one core for the main process
    assert device.default_workers(cuda, 4) == 3
    assert device.default_workers(cuda, 8) == 1
    assert device.default_workers(cuda, 32) == 1  # never none
    assert device.default_workers(torch.device("cpu"), 1) == 1
    monkeypatch.setattr(device, "usable_cores", lambda: 128)
    assert device.default_workers(cuda, 1) == 127  # no fixed cap
    assert device.usable_cores() >= 1
