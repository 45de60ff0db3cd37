"""`sslx train` on damaged state and on shards that are consistent but wrong (issue 28):
one `sslx: error:` line, exit 2, nothing written; and the faults that are repaired or
survived (a torn metrics line, a full disk while saving). One row per case, as in
test_bad_input.py."""

import json
import shutil

import pytest
import torch

from sslx.atomic import save_torch_atomic as save_atomic
from sslx.cli import main
from sslx.common.locks import FolderLock

TINY = [*"--size 64 --conv1-stride 4 --classifier-width 16 --workers 0".split()]


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def resumable_run(shards, tmp_path_factory):
    """A DeepCluster run stopped after one step: it resumes mid-epoch."""
    run = tmp_path_factory.mktemp("dc") / "run"
    flags = "--clusters 4 --pca-dim 8 --batch-size 16 --max-steps 1 --quiet"
    args = ["train", "--shards", str(shards), "--method", "deepcluster", *TINY, *flags.split()]
    assert main([*args, "--out", str(run)]) == 0
    return run


def rewritten_manifest(shards, t, change):
    """A copy of the shards whose manifest `change(manifest, folder)` rewrites, consistently:
    every total still adds up."""
    out = copy(shards, t / "s")
    manifest = json.loads((out / "manifest.json").read_text())
    change(manifest, out)
    manifest["num_samples"] = sum(e["num_samples"] for e in manifest["shards"])
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _twice(manifest, out):
    manifest["shards"][1] = dict(manifest["shards"][0])


def _swapped(manifest, out):
    """Shards 0 and 1 swapped on disk, their sizes and hashes swapped in the manifest."""
    a, b = out / "shard-000000.tar", out / "shard-000001.tar"
    a.rename(out / "x"), b.rename(a), (out / "x").rename(b)
    first, second = manifest["shards"][0], manifest["shards"][1]
    for key in ("bytes", "sha256"):
        first[key], second[key] = second[key], first[key]


def _copied(manifest, out):
    """Shard 1 replaced by a copy of shard 0, its entry given shard 0's size and hash."""
    shutil.copy(out / "shard-000000.tar", out / "shard-000001.tar")
    for key in ("bytes", "sha256"):
        manifest["shards"][1][key] = manifest["shards"][0][key]


def _gzipped(manifest, out):
    """Shard 0 gzip-compressed, its size and hash updated: a member inflating to far more
    than the file would be read into memory by a reader that decompresses."""
    import gzip
    import hashlib

    path = out / "shard-000000.tar"
    path.write_bytes(gzip.compress(path.read_bytes()))
    entry = manifest["shards"][0]
    entry["bytes"], entry["sha256"] = (
        path.stat().st_size,
        hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def _absurd(manifest, out):
    manifest["shards"][-1]["num_samples"] = 10**12


def _nul(manifest, out):
    manifest["shards"][0]["name"] = "shard-000000.tar\0.txt"


def _outside(manifest, out):
    """The samples table's first row points past the end of its shard."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(out / "samples.parquet")
    offsets = table["jpg_offset"].to_pylist()
    offsets[0] = 10**9
    column = table.schema.get_field_index("jpg_offset")
    table = table.set_column(column, "jpg_offset", pa.array(offsets, table["jpg_offset"].type))
    pq.write_table(table, out / "samples.parquet")


def damaged_checkpoint(run, t, change):
    """A copy of `run` whose checkpoint has one field changed by `change(payload)`."""
    out = copy(run, t / "r")
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    change(payload)
    save_atomic(payload, out / "checkpoint.pt")
    return out


DAMAGED = {  # setup name: (change, message)
    "ck_epoch": (lambda p: p["progress"].update(epoch="1"), "progress.epoch is str, not int"),
    "ck_step": (
        lambda p: p["progress"].update(global_step=True),
        "progress.global_step is bool, not int",
    ),
    "ck_negative": (lambda p: p["progress"].update(epoch=-3), "progress.epoch is negative"),
    "ck_progress": (lambda p: p.update(progress=[1, 2]), "progress is list, not dict"),
    "ck_finished": (
        lambda p: p["progress"].update(finished="no"),
        "progress.finished is str, not bool",
    ),
    "ck_layout": (lambda p: p["layout"].update(workers="0"), "layout.workers is str, not int"),
    "ck_weight": (
        lambda p: p["backbone"].update({next(iter(p["backbone"])): "x"}),
        "backbone.mean is str, not a tensor",
    ),
    "ck_optimizer": (lambda p: p["optimizer"].pop("state"), "optimizer has no state and"),
    "ck_weights_only": (
        lambda p: p.update(optimizer=None, scheduler=None),
        "holds weights only (no optimiser state): it cannot resume",
    ),
    "ck_groups": (
        lambda p: p["optimizer"]["param_groups"].clear(),
        "the checkpoint's optimiser state does not fit this run",
    ),
}


HELD = []  # locks a setup holds: "another run" writing that folder


def locked(run, t):
    out = copy(run, t / "r")
    HELD.append(FolderLock(out))
    return out


def damaged_log(run, t, line: bytes):
    """A resumable run whose metrics.jsonl has a damaged first line before good ones."""
    out = copy(run, t / "r")
    log = out / "metrics.jsonl"
    log.write_bytes(line + b"\n" + log.read_bytes())
    return out


@pytest.fixture
def setups(shards, resumable_run):
    return {
        "shards": lambda t: shards,
        "twice": lambda t: rewritten_manifest(shards, t, _twice),
        "swapped": lambda t: rewritten_manifest(shards, t, _swapped),
        "copied": lambda t: rewritten_manifest(shards, t, _copied),
        "absurd": lambda t: rewritten_manifest(shards, t, _absurd),
        "gzipped": lambda t: rewritten_manifest(shards, t, _gzipped),
        "nul": lambda t: rewritten_manifest(shards, t, _nul),
        "outside": lambda t: rewritten_manifest(shards, t, _outside),
        **{
            name: (lambda t, change=change: damaged_checkpoint(resumable_run, t, change))
            for name, (change, _) in DAMAGED.items()
        },
        "bad_log": lambda t: damaged_log(resumable_run, t, b"{not json"),
        "deep_log": lambda t: damaged_log(resumable_run, t, b"[" * 50_000 + b"]" * 50_000),
        "locked": lambda t: locked(resumable_run, t),
    }


NEW_AT = "--method rotnet --shards {{{}}}"  # a new RotNet run on that setup's shards
OUT = ["--out", "{tmp}/out"]
CASES = [
    ([*NEW_AT.format("twice").split(), *OUT], "shard shard-000000.tar is listed twice"),
    ([*NEW_AT.format("swapped").split(), *OUT], "not the shard the manifest names there"),
    ([*NEW_AT.format("copied").split(), *OUT], "the first shard-000001.tar"),
    ([*NEW_AT.format("copied").split(), "--verify-shards", *OUT], "the first shard-000001.tar"),
    ([*NEW_AT.format("absurd").split(), *OUT], "cannot hold 1000000000000 samples"),
    # refused by the byte bound here (gzip shrank it), else by its first header
    ([*NEW_AT.format("gzipped").split(), "--verify-shards", *OUT], "shard-000000.tar"),
    ([*NEW_AT.format("nul").split(), *OUT], "is not a plain file name"),
    ([*NEW_AT.format("outside").split(), *OUT], "points outside its shards; rebuild it with"),
    *((["--out", f"{{{name}}}", "--resume"], message) for name, (_, message) in DAMAGED.items()),
    (["--out", "{locked}", "--resume"], "r is being written by process"),
    (["--out", "{bad_log}", "--resume"], "metrics.jsonl line 1 is not a JSON record; move"),
    (["--out", "{deep_log}", "--resume"], "metrics.jsonl line 1 is not a JSON record"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_input(bad_input, setups, args, message):
    bad_input(["train", "--quiet", *TINY, *args], message, setups)


def test_a_torn_last_metrics_line_is_dropped_on_resume(resumable_run, tmp_path, capsys):
    """A run killed mid-append leaves a last line without its end: the resume drops it."""
    run = copy(resumable_run, tmp_path / "r")
    log = run / "metrics.jsonl"
    log.write_bytes(log.read_bytes() + b'{"step": 1, "loss": 0.5')
    assert main(["train", "--out", str(run), "--resume", "--max-steps", "2", "--quiet"]) == 0
    assert "dropped the torn last line of" in capsys.readouterr().err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(isinstance(r, dict) for r in records) and records[-1]["step"] == 2


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_last(
    shards, tmp_path, monkeypatch, capsys
):
    """torch's zip writer reports ENOSPC as RuntimeError "[enforce fail at
    inline_container.cc]": the CLI says which file and how much space, exit 2, and the
    last good checkpoint stays to resume from."""
    from sslx import atomic

    run = tmp_path / "run"
    args = ["train", "--shards", str(shards), "--method", "rotnet", "--size", "64"]
    args += [*"--conv1-stride 4 --classifier-width 16 --batch-size 48 --workers 0".split()]
    args += ["--quiet", "--out", str(run)]
    assert main([*args, "--max-steps", "1"]) == 0
    before = (run / "checkpoint.pt").read_bytes()

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter")

    usage = type(atomic.shutil.disk_usage(tmp_path))(10**9, 10**9 - 1000, 1000)
    with monkeypatch.context() as m:
        m.setattr(torch, "save", full)
        m.setattr(atomic.shutil, "disk_usage", lambda p: usage)
        capsys.readouterr()
        assert main([*args, "--resume", "--max-steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0] and "checkpoint.pt" in err[0], err
    assert "No space left on device (it needs about 0.03 GB, 0.00 GB are free" in err[0], err
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert main([*args, "--resume", "--max-steps", "2"]) == 0
