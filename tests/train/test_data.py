import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sslx.common.crops import CropConfig
from sslx.errors import InputError
from sslx.train.batches import rank_batch_size, steps_per_epoch
from sslx.train.data import ShardStream, worker_batches, worker_pieces


def _positions(counts, pieces):
    starts = np.concatenate([[0], np.cumsum(counts)])
    return [starts[s] + i for s, skip, take in pieces for i in range(skip, skip + take)]


@pytest.mark.parametrize(("world", "workers", "batch"), [(1, 1, 7), (2, 3, 10), (3, 2, 48)])
def test_epoch_plan_splits_samples_once_over_ranks_and_workers(world, workers, batch):
    counts = [50, 50, 50, 13, 50]
    steps = steps_per_epoch(sum(counts), batch)  # batch: the global batch
    per_rank = rank_batch_size(batch, world)
    seen = []
    for rank in range(world):
        for w in range(workers):
            pieces = worker_pieces(counts, 0, 4, rank, world, w, workers, batch)
            got = _positions(counts, pieces)
            assert len(got) == worker_batches(steps, w, workers) * per_rank
            seen += got
    assert len(seen) == len(set(seen)) == steps * batch
    assert sum(worker_batches(steps, w, workers) for w in range(workers)) == steps


def test_global_batch_gives_the_same_steps_on_any_rank_count():
    counts = [50, 50, 50, 13, 50]
    for world in (1, 2, 4):
        per_rank = rank_batch_size(32, world)
        plans = [worker_pieces(counts, 0, 0, r, world, 0, 1, 32) for r in range(world)]
        taken = [sum(take for _, _, take in plan) for plan in plans]
        assert taken == [steps_per_epoch(213, 32) * per_rank] * world == [6 * 32 // world] * world
    with pytest.raises(InputError, match=r"--batch-size 30 .* 4 ranks"):
        rank_batch_size(30, 4)


def test_shard_order_changes_with_epoch_and_seed():
    counts = [10] * 20
    plan = [worker_pieces(counts, s, e, 0, 1, 0, 1, 10) for s, e in [(0, 0), (0, 1), (1, 0)]]
    orders = [[p[0] for p in pieces] for pieces in plan]
    assert orders[0] != orders[1] and orders[0] != orders[2]
    assert orders[0] == [p[0] for p in worker_pieces(counts, 0, 0, 0, 1, 0, 1, 10)]


def _stream(shards, **kw) -> ShardStream:
    args = dict(batch_size=16, input_size=32, crop=CropConfig(), seed=1, shuffle_buffer=64)
    return ShardStream(shards, **{**args, **kw})


def _collect(stream, epoch=0, start=0, workers=0):
    stream.set_epoch(epoch, start)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
    return list(loader)


def test_stream_yields_the_epoch_once_with_indices_and_crops(shards):
    stream = _stream(shards)
    batches = _collect(stream)
    assert len(batches) == len(stream) == 240 // 16
    idx = torch.cat([b.index for b in batches]).tolist()
    assert len(set(idx)) == len(idx) == 15 * 16 and set(idx) <= set(range(240))
    assert idx != sorted(idx)  # shuffled
    b = batches[0]
    assert b.image.shape == (16, 32, 32, 3) and b.image.dtype == torch.uint8
    assert b.bad == 0 and b.errors == []
    # Same epoch, same order and pixels; the next epoch differs.
    again = _collect(stream)
    assert all(torch.equal(x.image, y.image) for x, y in zip(batches, again, strict=True))
    other = torch.cat([b.index for b in _collect(stream, epoch=1)]).tolist()
    assert other != idx


def test_worker_processes_and_resume_give_the_same_batches(shards):
    stream = _stream(shards)
    full = _collect(stream, workers=2)
    assert len(full) == 15
    tail = _collect(stream, start=6, workers=2)
    assert len(tail) == 9
    for a, b in zip(full[6:], tail, strict=True):
        assert torch.equal(a.index, b.index) and torch.equal(a.image, b.image)
    # The crops of a sample depend on (seed, epoch, index) only, not on the worker count.
    single = {
        int(i): img for b in _collect(stream) for i, img in zip(b.index, b.image, strict=True)
    }
    for b in full:
        for i, img in zip(b.index, b.image, strict=True):
            if int(i) in single:
                assert torch.equal(single[int(i)], img)


def _copy(shards: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(shards, out)
    return out


def test_corrupt_shard_is_counted_and_reported(shards, tmp_path):
    copy = _copy(shards, tmp_path)
    shard = copy / "shard-000001.tar"
    data = bytearray(shard.read_bytes())
    shard.chmod(0o644)
    shard.write_bytes(bytes(data[: len(data) // 2]))  # truncated mid-shard
    batches = _collect(_stream(copy))
    bad = sum(b.bad for b in batches)
    errors = [e for b in batches for e in b.errors]
    n = sum(len(b.index) for b in batches)
    assert 0 < bad < 50 and n + bad == 15 * 16
    assert any(e.startswith("shard-000001.tar") for e in errors)


def test_shard_split_over_workers_reports_each_piece_with_its_own_count(shards, tmp_path):
    """Each piece of a damaged shard gets its own line (the loop reports each key once),
    and the lines' counts add up to the samples lost, not to one worker's share."""
    counts = [50, 50, 50, 50, 40]
    split = [{s for s, _, _ in worker_pieces(counts, 1, 0, 0, 1, w, 2, 16)} for w in (0, 1)]
    shard = sorted(split[0] & split[1])[0]  # the shard both workers read a part of
    copy = _copy(shards, tmp_path)
    path = copy / f"shard-{shard:06d}.tar"
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:4096])  # only its first sample or so survives
    batches = _collect(_stream(copy), workers=2)
    bad = sum(b.bad for b in batches)
    lines = [e for b in batches for e in b.errors if e.startswith(path.name)]
    assert len(lines) == 2 and len({e.split(":")[0] for e in lines}) == 2
    lost = [int(e.split(": ")[1].split(" of ")[0]) for e in lines]
    assert sum(lost) == bad == 15 * 16 - sum(len(b.index) for b in batches)
    assert bad >= 40 and min(lost) > 0


def test_undecodable_sample_is_counted(shards, tmp_path):
    copy = _copy(shards, tmp_path)
    shard = copy / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    shard.chmod(0o644)
    with tarfile.open(shard, "w") as tar:
        for m, payload in members:
            if m.name == "000000007.jpg":
                payload = b"garbage" * 10
                m.size = len(payload)
            tar.addfile(m, io.BytesIO(payload))
    batches = _collect(_stream(copy, batch_size=48))
    seen = torch.cat([b.index for b in batches]).tolist()
    errors = [e for b in batches for e in b.errors]
    assert len(seen) == 239 and 7 not in seen  # 240 // 48 = 5 batches cover every sample
    assert sum(b.bad for b in batches) == 1
    assert errors == ["sample 000000007 is not a decodable 64x64 JPEG"]


def test_missing_folder_empty_folder_and_missing_shard_are_input_errors(shards, tmp_path):
    with pytest.raises(InputError, match="not found"):
        _stream(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no manifest\.json"):
        _stream(tmp_path / "empty")
    copy = _copy(shards, tmp_path)
    (copy / "shard-000002.tar").unlink()
    with pytest.raises(InputError, match="missing"):
        _stream(copy)
    with pytest.raises(InputError, match="fewer than one batch"):
        _stream(shards, batch_size=300)


def _views():
    from sslx.common.views import ViewSpec

    return (ViewSpec(32, CropConfig(), blur_prob=1.0), ViewSpec(24, CropConfig(0.05, 0.4)))


def _view_batches(shards, workers, start_step=0, **kw):
    stream = _stream(shards, views=_views(), **kw)
    stream.set_epoch(1, start_step)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
    return list(loader)


def test_views_are_the_same_for_any_worker_count_and_resume(shards):
    one = _view_batches(shards, 0)
    two = _view_batches(shards, 2, shuffle_buffer=64)
    assert len(one) == len(two) == 15
    first = one[0]
    assert [tuple(v.image.shape) for v in first.views] == [(16, 32, 32, 3), (16, 24, 24, 3)]
    assert first.image is first.views[0].image
    for a, b in zip(one, two, strict=True):  # batch j's samples differ, each sample's views do not
        order = {i: k for k, i in enumerate(b.index.tolist())}
        for k, i in enumerate(a.index.tolist()):
            if i in order:
                for va, vb in zip(a.views, b.views, strict=True):
                    assert torch.equal(va.image[k], vb.image[order[i]])
                    assert torch.equal(va.params[k], vb.params[order[i]])
    resumed = _view_batches(shards, 0, start_step=5)
    assert all(
        torch.equal(a.views[1].image, b.views[1].image)
        for a, b in zip(one[5:], resumed, strict=True)
    )
    # The two views of a sample are different crops with their own draws.
    assert not torch.equal(first.views[0].params, first.views[1].params)
