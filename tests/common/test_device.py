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
    assert device.pick_device("auto", local_rank=3, local_world_size=4) == torch.device("cuda", 3)


@pytest.mark.parametrize(
    "gpus, local_rank, local_world_size",
    [(4, 5, 6), (4, 0, 5), (1, 1, 2), (1, 0, 2), (2, 2, 1)],
)
def test_more_local_ranks_than_gpus_is_refused_in_one_line(
    monkeypatch, gpus, local_rank, local_world_size
):
    _gpus(monkeypatch, gpus)  # sharing a GPU ends in NCCL's "Duplicate GPU" error
    with pytest.raises(InputError, match=rf"ranks on this machine but {gpus} visible GPU"):
        device.pick_device("cuda", local_rank, local_world_size)


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


@pytest.mark.parametrize(
    "workers, ranks, free, refused",
    [(0, 1, 0, False), (15, 1, 2.4e9, False), (15, 1, 2.2e9, True), (8, 2, 2.4e9, True)],
)
def test_a_loader_that_would_outgrow_shared_memory_is_refused(
    monkeypatch, tmp_path, workers, ranks, free, refused
):
    """15 workers x 4 batches x 256 x 3 x 224 x 224 bytes = 2.31 GB (issue 29)."""
    usage = type(device.shutil.disk_usage(tmp_path))(int(free), 0, int(free))
    monkeypatch.setattr(device.shutil, "disk_usage", lambda path: usage)
    batch = 256 * 3 * 224 * 224
    if not refused:
        device.check_shared_memory(workers, batch, ranks, shm=str(tmp_path))
        return
    with pytest.raises(InputError, match=rf"about 2\.\d\d GB of shared memory \({ranks} rank"):
        device.check_shared_memory(workers, batch, ranks, shm=str(tmp_path))
