"""`sslx train` on bad input: one `sslx: error:` line, exit 2, nothing written (issue 15).

One row per case: arguments (`{name}` runs the setup of that name, see `setups`) and a
fragment of the expected message. `{ro}` is a read-only folder, `{tmp}` the test folder."""

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

from sslx.atomic import save_torch_atomic as save_atomic
from sslx.cli import main
from sslx.common import device
from sslx.train.checkpoint import build_checkpoint
from sslx.train.methods.deepcluster.method import clusters_path

TINY = [*"--size 64 --conv1-stride 4 --classifier-width 16 --workers 0".split()]


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def put(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _train(shards, run, method: str, flags: str) -> None:
    """`sslx train` of a tiny run into `run`, which must succeed."""
    args = ["--shards", str(shards), "--method", method, *TINY, *flags.split(), "--quiet"]
    assert main(["train", *args, "--out", str(run)]) == 0


@pytest.fixture(scope="module")
def finished_run(shards, tmp_path_factory):
    """A finished one-epoch RotNet run (batch size 48)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    _train(shards, run, "rotnet", "--batch-size 48 --epochs 1")
    return run


@pytest.fixture(scope="module")
def deepcluster_run(shards, tmp_path_factory):
    """A DeepCluster run stopped after one step: a mid-epoch resume reads its clusters file."""
    run = tmp_path_factory.mktemp("dc") / "run"
    _train(shards, run, "deepcluster", "--clusters 4 --pca-dim 8 --batch-size 16 --max-steps 1")
    return run


def damaged_manifest(shards, t):
    out = copy(shards, t / "s")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["num_samples"] = "240"
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def truncated_shard(shards, t, keep=0.5):
    out = copy(shards, t / "s")
    shard = sorted(out.glob("shard-*.tar"))[2]
    shard.write_bytes(shard.read_bytes()[: int(shard.stat().st_size * keep)])
    return out


def changed_shard(shards, t):
    out = copy(shards, t / "s")
    shard = sorted(out.glob("shard-*.tar"))[1]
    data = bytearray(shard.read_bytes())
    data[-20000] ^= 0xFF
    shard.write_bytes(bytes(data))
    return out


def unfit_checkpoint(t):
    payload = build_checkpoint(
        config={},
        model=torch.nn.Module and _model(),
        method="rotnet",
        backbone={"convs.conv1.0.weight": torch.zeros(3)},
        heads={},
        progress={},
    )
    save_atomic(payload, t / "unfit.pt")
    return t / "unfit.pt"


def _model():
    from sslx.train.alexnet import ModelConfig

    return ModelConfig(input_size=64, conv1_stride=4, classifier_width=16)


def one_class(image_folder, t):
    root = t / "one"
    shutil.copytree(image_folder / "red", root / "red")
    return root


def with_file(run, t, relative, data):
    out = copy(run, t / "r")
    put(out / relative, data)
    return out


def small_shared_memory(monkeypatch, shards):
    """A /dev/shm with 8 MB free, too little for two workers' batches of 2.4 MB."""
    free = shutil.disk_usage("/").__class__(64 << 20, 56 << 20, 8 << 20)
    monkeypatch.setattr(device.shutil, "disk_usage", lambda path: free)
    monkeypatch.setattr(device.os.path, "isdir", lambda path: True)
    return shards


@pytest.fixture
def setups(shards, image_folder, evil_cifar, finished_run, deepcluster_run, monkeypatch):
    zero = clusters_path("", 0)
    return {
        "small_shm": lambda t: small_shared_memory(monkeypatch, shards),
        "missing": lambda t: t / "missing",
        "empty": lambda t: put(t / "empty" / ".keep").parent,
        "shards": lambda t: shards,
        "myshards": lambda t: copy(shards, t / "s"),
        "bad_manifest": lambda t: damaged_manifest(shards, t),
        "garbage_manifest": lambda t: put(copy(shards, t / "s") / "manifest.json", b"{").parent,
        "truncated": lambda t: truncated_shard(shards, t),
        "changed": lambda t: changed_shard(shards, t),
        "folder": lambda t: copy(image_folder, t / "images"),
        "one_class": lambda t: one_class(image_folder, t),
        "evil_cifar": evil_cifar,
        "run": lambda t: copy(finished_run, t / "r"),
        "bad_yaml": lambda t: with_file(finished_run, t, "config.yaml", b"a: [\n  b: {\n"),
        "deep_yaml": lambda t: with_file(finished_run, t, "config.yaml", b"[" * 50_000),
        "dc_zero": lambda t: with_file(deepcluster_run, t, zero, b""),
        "dc_garbage": lambda t: with_file(deepcluster_run, t, zero, b"\x93NUMPY garbage"),
        "dc_short": lambda t: with_file(deepcluster_run, t, zero, _npy(np.zeros(3, np.int32))),
        "unfit": unfit_checkpoint,
        "pickle": lambda t: torch.save(argparse.Namespace(a=1), t / "obj.pt") or t / "obj.pt",
        "file": lambda t: put(t / "file"),
    }


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


NEW = [*"--method rotnet --shards {shards}".split()]
OUT = ["--out", "{tmp}/out"]
SUP = [*"--method supervised --dataset imagefolder".split()]
CASES = [
    ([*"--shards {missing} --method rotnet".split(), *OUT], "shard folder not found"),
    ([*"--shards {empty} --method rotnet".split(), *OUT], "no manifest.json"),
    (["--shards", "{shards}", *OUT], "--method is required"),
    ([], "--method is required (and --shards, or --data-dir)"),
    (
        [*"--shards {shards} --method deepcluster --decode gpu".split(), *OUT],
        "--decode gpu decodes the shard stream; deepcluster reads its own",
    ),
    ([*"--shards {shards} --method rotnet --decode tpu".split(), *OUT], "'tpu' is not one of"),
    (["--resume"], "--out is required with --resume"),
    (
        [*"--shards {small_shm} --method rotnet --workers 2 --batch-size 192".split(), *OUT],
        "about 0.02 GB of shared memory (1 rank(s) x 2 workers x 4 batches x 2.4 MB) but "
        "/dev/shm has 0.01 GB free",
    ),
    ([*NEW, "--size", "8", *OUT], "no feature map"),
    ([*NEW, "--size", "100000", *OUT], "--size must be in [1, 1024]"),
    ([*NEW, "--conv1-stride", "-1", *OUT], "--conv1-stride must be in [0, 11]"),
    ([*NEW, "--batch-size", "999", *OUT], "fewer than one"),
    ([*NEW, "--seed", "-1", *OUT], "--seed must be >= 0"),
    ([*NEW, "--workers", "-1", *OUT], "--workers must be >= 0"),
    ([*NEW, "--freeze", "conv9", *OUT], "--freeze: unknown layer"),
    ([*NEW, "--lr-milestones", "a,b", *OUT], "--lr-milestones must be"),
    ([*NEW, "--lr-milestones", "-3", *OUT], "--lr-milestones must be epochs >= 0"),
    # Numbers every declaration bounds (sslx.settings): refused before any work.
    ([*NEW, "--lr", "nan", *OUT], "--lr must be a finite number (got nan)"),
    ([*NEW, "--lr", "inf", *OUT], "--lr must be a finite number (got inf)"),
    ([*NEW, "--lr", "0", *OUT], "--lr must be > 0 (got 0.0)"),
    ([*NEW, "--momentum", "nan", *OUT], "--momentum must be a finite number"),
    ([*NEW, "--lr-gamma", "nan", *OUT], "--lr-gamma must be a finite number"),
    ([*NEW, "--weight-decay", "-1", *OUT], "--weight-decay must be >= 0 (got -1.0)"),
    ([*NEW, "--max-bad-fraction", "nan", *OUT], "--max-bad-fraction must be a finite"),
    ([*NEW, "--max-steps", "0", *OUT], "--max-steps must be >= 1 (got 0)"),
    ([*NEW, "--epochs", "0", *OUT], "--epochs must be >= 1 (got 0)"),
    ([*NEW, *"--crop-scale-min 0.5 --crop-scale-max 0.2".split(), *OUT], "is above"),
    ([*NEW, "--dist-timeout-minutes", "-5", *OUT], "--dist-timeout-minutes must be > 0"),
    ([*NEW, "--clusters", "50", *OUT], "--clusters do(es) not apply to --method rotnet"),
    (["--resume", *OUT], "nothing to resume"),
    ([*"--method nope --shards {shards}".split(), *OUT], "Invalid value for '--method'"),
    ([*"--method rotnet --shards {bad_manifest}".split(), *OUT], "num_samples is not"),
    ([*"--method rotnet --shards {garbage_manifest}".split(), *OUT], "manifest.json is unread"),
    ([*"--method rotnet --shards {truncated}".split(), *OUT], "1 of 5 shard(s) in"),
    ([*"--method rotnet --shards {truncated}".split(), *OUT], "the first shard-000002.tar"),
    ([*"--method rotnet --shards {changed} --verify-shards".split(), *OUT], "changed"),
    ([*"--method rotnet --shards {myshards} --out {myshards}".split()], "overlaps"),
    ([*"--method rotnet --shards {myshards} --out {myshards}/run".split()], "overlaps"),
    ([*"--method rotnet --shards {myshards}/.. --out {tmp}/o".split()], "overlaps"),
    ([*SUP, *"--data-dir {folder} --out {folder}/run".split()], "overlaps the input --data-dir"),
    ([*SUP, "--data-dir", "{one_class}", *OUT], "fewer than 2 classes"),
    ([*SUP, "--data-dir", "{missing}", *OUT], "dataset path not found"),
    ([*NEW, "--monitor", "{one_class}", *OUT], "has one class (red); kNN accuracy needs two"),
    ([*NEW, "--monitor", "{missing}", *OUT], "dataset path not found"),
    ([*NEW, "--monitor", "{folder}", "--monitor-images", "20", *OUT], "leaves 16 memory images"),
    ([*NEW, "--monitor", "{folder}", "--monitor-images", "0", *OUT], "--monitor-images must be"),
    ([*NEW, "--monitor", "{folder}", "--monitor-dataset", "mnist", *OUT], "'mnist' is not one"),
    (
        [*"--method supervised --dataset cifar10 --data-dir {evil_cifar}".split(), *OUT],
        "calls posix.system, which CIFAR files never do",
    ),
    ([*NEW, "--out", "{ro}/run"], "cannot write {ro}/run: Read-only file system"),
    ([*NEW, "--out", "{file}"], "{file}: File exists"),
    ([*NEW, "--init", "{unfit}", *OUT], "the weights do not match its model record"),
    ([*NEW, "--init", "{pickle}", *OUT], "is not an sslx checkpoint"),
    ([*NEW, "--init", "{missing}", *OUT], "checkpoint not found"),
    (
        [*"--out {run} --resume --batch-size 16".split()],
        "--batch-size cannot change on --resume (the run has 48, the command gives 16)",
    ),
    ([*"--out {run} --resume --lr 0.5 --seed 3".split()], "--seed cannot change"),
    ([*"--out {run} --resume --clusters 3".split()], "--clusters do(es) not apply"),
    ([*"--out {run} --resume --method bigan".split()], "this run trains rotnet, not bigan"),
    (["--out", "{run}", "--resume"], "is finished (1 epoch(s))"),
    ([*"--out {run} --resume --epochs 1".split()], "is finished"),
    ([*NEW, "--out", "{run}"], "add --resume"),
    (["--out", "{bad_yaml}", "--resume"], "config.yaml is unreadable"),
    (["--out", "{deep_yaml}", "--resume"], "config.yaml is unreadable"),  # nested 50,000 deep
    (["--out", "{dc_zero}", "--resume"], "epoch_0000.npy is damaged"),
    (["--out", "{dc_garbage}", "--resume"], "epoch_0000.npy is damaged"),
    (["--out", "{dc_short}", "--resume"], "epoch_0000.npy is damaged: not 240 cluster labels"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_input(bad_input, setups, tmp_path, args, message):
    bad_input(["train", "--quiet", *TINY, *args], message, setups)
    assert not (tmp_path.parent / "MARKER").exists()  # a data folder never runs code


def test_resume_accepts_the_same_command_and_warns_only_on_a_real_order_change(
    shards, tmp_path, capsys
):
    """The run's own flags repeated with --resume are accepted (issue 15, item 5), and
    0 vs 1 loader workers read the same stream: no "different order" warning."""
    run = [
        "train",
        "--shards",
        str(shards),
        "--method",
        "rotnet",
        *TINY,
        *"--batch-size 16 --epochs 1 --out".split(),
        str(tmp_path / "r"),
        "--quiet",
    ]
    assert main([*run, "--max-steps", "2"]) == 0
    capsys.readouterr()
    assert main([*run, "--resume", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "finished 1 epoch(s)" in err and "different order" not in err, err
    # ... and the finished run says its last pretext accuracy, beside chance (issue 27)
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    last = [r["rotation_accuracy"] for r in map(json.loads, lines) if "rotation_accuracy" in r]
    assert f"last logged rotation_accuracy: {last[-1]:.3f} (chance: 0.25)" in err, err
    assert main([*run, *"--resume --epochs 2 --max-steps 16".split()]) == 0  # extends it
    assert "reached --max-steps at epoch 2" in capsys.readouterr().err
