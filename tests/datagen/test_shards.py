"""Shards are standard WebDataset tars, written atomically, in a folder we own."""

import json

import pytest
import webdataset as wds

from sslx.datagen import shards as sh
from sslx.errors import InputError


def samples(first: int, count: int):
    for i in range(first, first + count):
        yield sh.sample_key(i), f"jpeg-{i}".encode(), json.dumps({"index": i}).encode()


def test_shard_is_readable_by_webdataset_and_checksummed(tmp_path):
    record = sh.write_shard(tmp_path, 3, 30, samples(30, 10))
    assert record == sh.record_existing(tmp_path, 3, 30, 10)
    assert record.name == "shard-000003.tar" and record.num_samples == 10
    read = list(wds.WebDataset(str(tmp_path / record.name), shardshuffle=False))
    assert [s["__key__"] for s in read] == [sh.sample_key(i) for i in range(30, 40)]
    assert json.loads(read[4]["json"]) == {"index": 34} and read[4]["jpg"] == b"jpeg-34"


def test_failed_shard_leaves_nothing_behind(tmp_path):
    def broken():
        yield from samples(0, 3)
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        sh.write_shard(tmp_path, 0, 0, broken())
    assert list(tmp_path.iterdir()) == []


def test_parts_cover_every_shard_once():
    parts = [sh.part_shards(23, i, 4) for i in range(4)]
    assert sorted(j for p in parts for j in p) == list(range(23))
    assert sh.parse_part("2/4") == (2, 4)
    for bad in [*"4/4 -1/2 1 a/b 1/0".split()]:
        with pytest.raises(InputError, match="--part"):
            sh.parse_part(bad)


def test_shard_ranges_tile_the_dataset():
    ranges = [sh.shard_range(j, 7, 30) for j in range(5)]
    assert [i for r in ranges for i in r] == list(range(30))


def test_folder_claims(tmp_path):
    identity = sh.dataset_identity({"n": 10}, [])
    first = sh.claim_folder(tmp_path / "new", identity)
    with pytest.raises(InputError, match=r"new is being written by process \d+ \("):
        sh.claim_folder(tmp_path / "new", identity)  # while the first one writes
    first.release()
    sh.claim_folder(tmp_path / "new", identity).release()  # a resume
    sh.claim_folder(tmp_path / "new", identity, "part-1-of-2").release()  # parts side by side
    with pytest.raises(InputError, match=r"different dataset \(differs in: config.n\)"):
        sh.claim_folder(tmp_path / "new", sh.dataset_identity({"n": 11}, []))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.tar").write_bytes(b"precious")
    with pytest.raises(InputError, match="not empty"):
        sh.claim_folder(tmp_path / "other", identity)
    assert (tmp_path / "other" / "data.tar").read_bytes() == b"precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        sh.claim_folder(tmp_path / "file", identity)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        sh.read_manifest(tmp_path / "nope")
    sh.claim_folder(tmp_path, sh.dataset_identity({}, [])).release()
    with pytest.raises(InputError, match="not finished"):
        sh.read_manifest(tmp_path)
    (tmp_path / sh.MANIFEST_NAME).write_text("{broken")
    with pytest.raises(InputError, match="unreadable"):
        sh.read_manifest(tmp_path)
