"""`sslx probe` on bad input: one `sslx: error:` line, exit 2, nothing written (issue 15),
and a damaged feature cache is rebuilt, never used.

One row per case: arguments (`{name}` runs the setup of that name, see `setups`) and a
fragment of the expected message. `{ro}` is a read-only folder, `{tmp}` the test folder."""

import argparse
import json
import shutil

import pytest
import torch

from sslx.atomic import save_torch_atomic as save_atomic
from sslx.cli import main
from sslx.train.alexnet import ModelConfig
from sslx.train.checkpoint import build_checkpoint

FAST = [
    *(
        "--epochs 2 --batch-size 16 --lr-milestones 1 --workers 0 --quiet "
        "--cache-features --layers conv1"
    ).split()
]


def put(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def unfit_checkpoint(t):
    model = ModelConfig(input_size=32, classifier_width=16)
    payload = build_checkpoint(
        config={},
        model=model,
        method="rotnet",
        heads={},
        progress={},
        backbone={"convs.conv1.0.weight": torch.zeros(3)},
    )
    save_atomic(payload, t / "unfit.pt")
    return t / "unfit.pt"


def corrupt_image(image_folder, t, data):
    root = shutil.copytree(image_folder, t / "images")
    put(root / "red" / "000.png", data)
    return root


@pytest.fixture
def setups(image_folder, evil_cifar, jpeg_claiming):
    png = (image_folder / "red" / "000.png").read_bytes()
    return {
        "missing": lambda t: t / "missing",
        "flat": lambda t: put(t / "flat" / "a.png").parent,
        "empty_class": lambda t: (
            put(put(t / "ec" / "cat" / ".k").parent.parent / "dog" / ".k").parent.parent
        ),
        "folder": lambda t: shutil.copytree(image_folder, t / "images"),
        "twice": lambda t: linked_twice(image_folder, t),
        "huge": lambda t: with_huge_image(image_folder, t, jpeg_claiming),
        "one_class": lambda t: shutil.copytree(image_folder / "red", t / "one" / "red").parent,
        "evil_cifar": evil_cifar,
        "foreign": lambda t: torch.save({"state_dict": {}}, t / "f.pt") or t / "f.pt",
        "pickle": lambda t: torch.save(argparse.Namespace(a=1), t / "obj.pt") or t / "obj.pt",
        "unfit": unfit_checkpoint,
        "file": lambda t: put(t / "file"),
        "truncated_image": lambda t: corrupt_image(image_folder, t, png[: len(png) // 2]),
        "garbage_image": lambda t: corrupt_image(image_folder, t, b"not an image"),
    }


def with_huge_image(image_folder, t, jpeg_claiming):
    """A class folder holding a JPEG whose header claims 60000 x 60000 pixels."""
    root = shutil.copytree(image_folder, t / "images")
    (root / "red" / "000-huge.jpg").write_bytes(jpeg_claiming(60000))
    return root


def linked_twice(image_folder, t):
    """A class folder holding a link to one of its own images."""
    root = shutil.copytree(image_folder, t / "images")
    first = sorted((root / "red").iterdir())[0]
    (root / "red" / "zz-again.png").symlink_to(first)
    return root


RANDOM = ["--random-init", "--size", "32"]
OUT = ["--out", "{tmp}/out"]
CASES = [
    ([*RANDOM, *"--data-dir {folder} --val-dir {folder}".split(), *OUT], "overlaps --data-dir"),
    (
        [*RANDOM, *"--data-dir {folder} --val-dir {folder}/red".split(), *OUT],
        "the same images would be in training and validation",
    ),
    (
        [*RANDOM, *"--data-dir {folder} --cache-dir {folder}/cache".split(), *OUT],
        "--cache-dir {tmp}/images/cache overlaps --data-dir",
    ),
    ([*RANDOM, "--data-dir", "{twice}", *OUT], "are one image (a link)"),
    ([*RANDOM, "--data-dir", "{folder}"], "Missing option '--out'"),
    ([*RANDOM, "--data-dir", "{missing}", *OUT], "dataset path not found"),
    ([*RANDOM, "--data-dir", "{flat}", *OUT], "no class folders"),
    ([*RANDOM, "--data-dir", "{empty_class}", *OUT], "no images in class folder"),
    ([*RANDOM, "--data-dir", "{one_class}", *OUT], "has 1 class(es); a probe needs 2+"),
    ([*RANDOM, *"--data-dir {folder} --layers conv6".split(), *OUT], "conv6"),
    (
        [*RANDOM, *"--data-dir {folder} --layers conv1,layer1".split(), *OUT],
        "--layers: alexnet has no layer layer1; its layers are conv1, conv2",
    ),
    (
        [*RANDOM, *"--data-dir {folder} --eval linear,knn".split(), *OUT],
        "--eval knn takes the 200 nearest training images, but the training split has only 54",
    ),
    (
        [*RANDOM, *"--data-dir {folder} --eval linear,nearest".split(), *OUT],
        "--eval: unknown evaluation(s) nearest; give a comma-separated list of linear, knn",
    ),
    ([*RANDOM, *"--data-dir {folder} --eval ,".split(), *OUT], "--eval: none; give a comma"),
    (
        [*RANDOM, *"--data-dir {folder} --reference table3,table4".split(), *OUT],
        "--reference: unknown set(s) table4; give one or more of table3, zhang-imagenet",
    ),
    ([*RANDOM, *"--data-dir {folder} --seed -1".split(), *OUT], "--seed must be >= 0"),
    ([*RANDOM, *"--data-dir {folder} --split-seed -2".split(), *OUT], "--split-seed must be"),
    ([*RANDOM, *"--data-dir {folder} --workers -1".split(), *OUT], "--workers must be >= 0"),
    ([*RANDOM[:2], "100000", "--data-dir", "{folder}", *OUT], "--size must be in [1, 1024]"),
    ([*RANDOM, *"--data-dir {folder} --lr nan".split(), *OUT], "--lr must be a finite number"),
    ([*RANDOM, *"--data-dir {folder} --momentum -1".split(), *OUT], "--momentum must be in"),
    ([*RANDOM, *"--data-dir {folder} --val-fraction 1".split(), *OUT], "--val-fraction must"),
    ([*RANDOM, *"--data-dir {folder} --batch-size 1".split(), *OUT], "--batch-size must be"),
    ([*RANDOM, *"--data-dir {folder} --epochs 0".split(), *OUT], "--epochs must be >= 1"),
    ([*RANDOM, *"--data-dir {folder} --lr-milestones x".split(), *OUT], "--lr-milestones"),
    ([*RANDOM, *"--data-dir {folder} --crop-ratio 0".split(), *OUT], "--crop-ratio"),
    ([*"--checkpoint {foreign} --data-dir {folder}".split(), *OUT], "{foreign}"),
    ([*"--checkpoint {missing} --data-dir {folder}".split(), *OUT], "{missing}"),
    ([*"--checkpoint {pickle} --data-dir {folder}".split(), *OUT], "is not an sslx checkpoint"),
    ([*"--checkpoint {unfit} --data-dir {folder}".split(), *OUT], "weights do not match"),
    (["--data-dir", "{folder}", *OUT], "nothing to probe"),
    ([*RANDOM, *"--data-dir {folder} --out {folder}".split()], "overlaps the input --data-dir"),
    ([*RANDOM, *"--data-dir {folder} --out {folder}/red".split()], "overlaps the input"),
    ([*RANDOM, *"--data-dir {folder}/red/.. --out {tmp}".split()], "overlaps the input"),
    (
        [*RANDOM, *"--data-dir {one_class} --val-dir {folder} --out {folder}/p".split()],
        "overlaps the input --val-dir",
    ),
    (
        [*RANDOM, *"--dataset cifar10 --data-dir {evil_cifar}".split(), *OUT],
        "calls posix.system, which CIFAR files never do",
    ),
    ([*RANDOM, *"--data-dir {folder} --out {ro}/p".split()], "cannot write {ro}/p"),
    ([*RANDOM, *"--data-dir {folder} --out {file}".split()], "{file}"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_input(bad_input, setups, tmp_path, args, message):
    bad_input(["probe", *FAST, *args], message, setups)
    assert not (tmp_path.parent / "MARKER").exists()  # a data folder never runs code


@pytest.mark.parametrize("workers", ["0", "2"])  # 2: raised in a loader worker process
@pytest.mark.parametrize("image", ["truncated_image", "garbage_image", "huge"])
def test_a_corrupt_image_is_one_error_line(setups, tmp_path, capsys, image, workers):
    """Found while decoding, after the data and dims lines: then one error line, exit 2."""
    data = setups[image](tmp_path)
    args = ["probe", *FAST, *RANDOM, "--data-dir", str(data), "--out", str(tmp_path / "out")]
    args += ["--workers", workers]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("sslx: error: "), lines
    assert ("cannot decode image" in lines[-1] and "000.png" in lines[-1]) or (
        "000-huge.jpg declares more than the 178,956,970 pixels sslx decodes" in lines[-1]
    ), lines
    assert not any(line.startswith(("sslx", "Traceback")) for line in lines[:-1]), lines


def _top1(out):
    return json.loads((out / "results.json").read_text())["results"][0]["top1"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda c: c.with_name("train-conv1.f16").write_bytes(b""), "wrong size"),
        (lambda c: _truncate(c.with_name("train-conv1.f16")), "wrong size"),
        (lambda c: _zero_tail(c.with_name("train-conv1.f16")), "changed"),
        (lambda c: c.write_text('{"key": '), "marker is unreadable"),
        (lambda c: c.with_name("train-labels.pt").write_bytes(b""), "changed"),
    ],
    ids=["empty", "truncated", "zeroed", "marker", "labels"],
)
def test_a_damaged_feature_cache_is_rebuilt_never_used(
    image_folder, tmp_path, capsys, damage, reason
):
    args = [
        "probe",
        *FAST,
        *"--random-init --size 32 --data-dir".split(),
        str(image_folder),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    damage(tmp_path / "cache" / "random" / "train.json")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "sslx: warning: feature cache" in err and reason in err and "Traceback" not in err
    assert _top1(tmp_path / "b") == _top1(tmp_path / "a")


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-64])


def _zero_tail(path):
    data = bytearray(path.read_bytes())
    data[-64:] = bytes(64)
    path.write_bytes(bytes(data))
