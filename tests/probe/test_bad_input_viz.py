"""`sslx viz filters`, `sslx viz style`, `sslx viz neighbours`, `sslx viz ablation` and
`sslx viz modern` on bad input: one `sslx: error:` line, exit 2, nothing written.

One row per case: arguments (`{name}` runs the setup of that name) and a fragment of the
expected message. `{ro}` is a read-only folder, `{tmp}` the test folder."""

import argparse
import json
import struct
import zlib

import pytest
import torch
from PIL import Image

from sslx.atomic import save_torch_atomic as save_atomic
from sslx.cli import main
from sslx.train.alexnet import ModelConfig
from sslx.train.checkpoint import build_checkpoint


def _checkpoint(t, backbone=None):
    model = ModelConfig(input_size=32, classifier_width=16)
    if backbone is None:
        from sslx.train.alexnet import AlexNet

        backbone = AlexNet(model).state_dict()
    payload = build_checkpoint(
        config={}, model=model, method="rotnet", heads={}, progress={}, backbone=backbone
    )
    save_atomic(payload, t / "c.pt")
    return t / "c.pt"


LAYERS = ("conv1", "conv2", "conv3", "conv4")
R18 = ("stem", "layer1", "layer2", "layer3", "layer4")
ALEXNET = {"checkpoint": "/gone/checkpoint.pt", "model": {"arch": "alexnet"}}


def _net(name, layers=LAYERS, dims=9600, top1=0.5):
    return {"name": name, "dims": dict.fromkeys(layers, dims), "top1": dict.fromkeys(layers, top1)}


def _probes(t, name, results, split="held out 0.1"):
    """A probe --out folder holding results.json (`results`: the list, or the file's text)."""
    (t / name).mkdir()
    if not isinstance(results, str):
        results = json.dumps({"data": {"val": split}, "config": {}, "results": results})
    (t / name / "results.json").write_text(results)
    return t / name


def _png(t, name, side):
    Image.new("RGB", (side, side), (200, 90, 40)).save(t / name)
    return t / name


def _folder(t, name="data", classes=("blue", "red")):
    """Two classes of four 16 px images: 4 training and 4 validation images at
    --val-fraction 0.5."""
    for c, label in enumerate(classes):
        (t / name / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (40 * i, 200 * c, 90)).save(t / name / label / f"{i}.png")
    return t / name


def _huge_png(t):
    """A PNG whose header claims 20,000 x 20,000 pixels (over `crops.MAX_PIXELS`)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0))
    (t / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))
    return t / "huge.png"


SETUPS = {
    "ckpt": _checkpoint,
    "unfit": lambda t: _checkpoint(t, {"convs.conv1.0.weight": torch.zeros(3)}),
    "foreign": lambda t: torch.save({"state_dict": {}}, t / "f.pt") or t / "f.pt",
    "pickle": lambda t: torch.save(argparse.Namespace(a=1), t / "o.pt") or t / "o.pt",
    "probes": lambda t: _probes(t, "probes", [_net("bigan-none-seed0"), _net("random")]),
    "nojson": lambda t: _probes(t, "nojson", "{not json"),
    "deepjson": lambda t: _probes(t, "deepjson", "[" * 50_000 + "]" * 50_000),
    "noresults": lambda t: _probes(t, "noresults", json.dumps({"results": {}})),
    "unplaced": lambda t: _probes(t, "unplaced", [_net("rotnet-all")]),
    "noconv4": lambda t: _probes(t, "noconv4", [_net("bigan-all-seed0", layers=LAYERS[:3])]),
    "percent": lambda t: _probes(t, "percent", [_net("bigan-all-seed0", top1=62.0)]),
    "rotnet": lambda t: _probes(t, "rotnet", [_net("rotnet-scale-seed0")]),
    "wide": lambda t: _probes(t, "wide", [_net("bigan-scale-seed0", dims=3456)]),
    "split": lambda t: _probes(t, "split", [_net("bigan-all-seed0")], split="held out 0.2"),
    "r18": lambda t: _probes(t, "r18", [_net("simclr-resnet18-all-seed0", layers=R18)]),
    "r18conv": lambda t: _probes(t, "r18conv", [_net("dino-resnet18-none-seed1")]),
    "r18wide": lambda t: _probes(t, "r18w", [_net("random-resnet18", layers=R18, dims=512)]),
    "misnamed": lambda t: _probes(
        t, "misnamed", [{**_net("simclr-resnet18-all-seed0", layers=R18), "source": ALEXNET}]
    ),
    "file": lambda t: (t / "f.txt").write_text("x") and t / "f.txt",
    "img": lambda t: _png(t, "img.png", 64),
    "tiny": lambda t: _png(t, "tiny.png", 16),
    "huge": _huge_png,
    "data": _folder,
    "oneclass": lambda t: _folder(t, "one", ("red",)),
    "dirpng": lambda t: (t / "d.png").mkdir() or t / "d.png",
}

OUT = ["--out", "{tmp}/f.png"]
TO = ["--out", "{tmp}/table"]
NB = [*"neighbours --random-init --size 32 --data-dir {data} --val-fraction 0.5".split()]
FITS = [*"--queries 2 --neighbours 4".split()]  # as many as the data holds
ST = ["style", "--content", "{img}", "--style", "{img}", "--checkpoint", "{ckpt}"]
CASES = [
    ([*"filters {ckpt} --zoom 0".split(), *OUT], "--zoom must be in [1, 64]"),
    ([*"filters {ckpt} --zoom 100000".split(), *OUT], "--zoom must be in [1, 64]"),
    ([*"filters {ckpt} --columns 0".split(), *OUT], "--columns must be in [1, 1024]"),
    ([*"filters {ckpt} --out {tmp}/x.txt".split()], "--out must be a .png file"),
    ([*"filters {ckpt} --out {ro}/f.png".split()], "cannot write {ro}: Read-only file system"),
    (["filters", "{foreign}", *OUT], "is not an sslx checkpoint"),
    (["filters", "{pickle}", *OUT], "is not an sslx checkpoint"),
    (["filters", "{unfit}", *OUT], "weights do not match"),
    (["filters", "{tmp}/missing.pt", *OUT], "checkpoint not found"),
    (["ablation", "{tmp}/missing", *TO], "no results.json"),
    (["ablation", "{nojson}", *TO], "not valid JSON"),
    (["modern", "{deepjson}", *TO], "not valid JSON"),  # nested 50,000 deep
    (["ablation", "{noresults}", *TO], "not an sslx probe results.json"),
    (["ablation", "{unplaced}", *TO], "cannot place network 'rotnet-all' in the table"),
    (["ablation", "{noconv4}", *TO], "network 'bigan-all-seed0' has no conv4 probe"),
    (["ablation", "{percent}", *TO], "bigan-all-seed0 conv1 top-1 is not in [0, 1]"),
    (["ablation", "{probes}", "{probes}", *TO], "two networks for row (c) seed 0"),
    (["ablation", "{probes}", "{rotnet}", *TO], "the preset rows mix methods (bigan, rotnet)"),
    (["ablation", "{probes}", "{wide}", *TO], "probed at different dimensions"),
    (["ablation", "{probes}", "{split}", *TO], "different settings (val: 'held out 0.2' vs"),
    ([*"ablation {probes} --out {file}".split()], "is a file; give a folder"),
    ([*"ablation {probes} --out {ro}".split()], "cannot write {ro}: Read-only file system"),
    (["ablation", *TO], "Missing argument 'PROBE_DIR...'"),
    (["modern", "{tmp}/missing", *TO], "no results.json"),
    (["modern", "{nojson}", *TO], "not valid JSON"),
    (["modern", "{unplaced}", *TO], "cannot place network 'rotnet-all' in the table"),
    (["modern", "{noconv4}", *TO], "network 'bigan-all-seed0' has no conv4 probe"),
    (["modern", "{r18conv}", *TO], "network 'dino-resnet18-none-seed1' has no stem probe"),
    (["modern", "{percent}", *TO], "bigan-all-seed0 conv1 top-1 is not in [0, 1]"),
    (["modern", "{r18}", "{r18}", *TO], "two networks for row SimCLR, all (resnet18) seed 0"),
    (["modern", "{r18}", "{r18wide}", *TO], "resnet18 networks were probed at different dim"),
    (
        ["modern", "{misnamed}", *TO],
        "'simclr-resnet18-all-seed0' is named resnet18 but is an alexnet",
    ),
    (["modern", "{probes}", "{split}", *TO], "different settings (val: 'held out 0.2' vs"),
    ([*"modern {probes} --out {file}".split()], "is a file; give a folder"),
    ([*"modern {probes} --out {ro}".split()], "cannot write {ro}: Read-only file system"),
    (["modern", *TO], "Missing argument 'PROBE_DIR...'"),
    (["filters"], "sslx viz filters: error: Missing argument 'CHECKPOINT'"),  # the whole path
    ([*ST, "--out", "{tmp}/f.jpg"], "--out must be a .png file"),
    ([*ST, "--out", "{img}"], "overlaps the input --content"),
    ([*ST, "--content", "{tmp}/missing.png", *OUT], "--content: cannot read image"),
    ([*ST, "--style", "{file}", *OUT], "--style: cannot decode image"),
    ([*ST, "--style", "{tiny}", *OUT], "is too small (16x16, 256x256 at --size 256); style"),
    ([*ST, "--content", "{huge}", *OUT], "declares more than the 178,956,970 pixels"),
    ([*ST[:5], "--random-init", "--size", "48", *OUT], "48x48 px at --size 48, too small for"),
    ([*ST, "--steps", "0", *OUT], "--steps must be in [1, 10000]"),
    ([*ST, "--style-weight", "0", *OUT], "--style-weight must be > 0"),
    ([*ST[:5], *OUT], "nothing to draw: give --checkpoint CKPT and/or --random-init"),
    ([*ST, "--checkpoint", "{tmp}/missing.pt", *OUT], "checkpoint not found"),
    ([*ST, "--out", "{ro}/f.png"], "cannot write {ro}: Read-only file system"),
    (ST[:3] + ST[5:] + OUT, "sslx viz style: error: Missing option '--style'"),
    ([*NB, "--layer", "layer2", *OUT], "--layer: alexnet has no layer layer2; its layers are"),
    ([*NB, "--layer", "conv9", *OUT], "--layer: unknown layer(s) conv9"),
    ([*NB, "--layer", "conv1,conv2", *OUT], "--layer takes one tap (got 'conv1,conv2')"),
    ([*NB, "--neighbours", "5", *OUT], "--neighbours 5: the training split, the memory searched"),
    ([*NB, *OUT], "--neighbours 8: the training split, the memory searched, has only 4 images"),
    ([*NB, "--queries", "3", "--neighbours", "4", *OUT], "--queries 3: each query is the first"),
    ([*NB, "--queries", "0", *OUT], "--queries must be in [1, 100]"),
    ([*NB, "--neighbours", "65", *OUT], "--neighbours must be in [1, 64]"),
    ([*NB, *FITS, "--out", "{ro}/f.png"], "cannot write {ro}: Read-only file system"),
    ([*NB, *FITS, "--out", "{tmp}/f.jpg"], "--out must be a .png file"),
    ([*NB, *FITS, "--out", "{dirpng}"], "is a folder; give a .png file"),
    ([*NB, *FITS, "--out", "{data}/red/f.png"], "overlaps the input --data-dir"),
    ([*NB, *FITS, "--layers", "conv1", *OUT], "--layers only applies with --cache-dir"),
    (
        [*NB, *FITS, *"--cache-dir {tmp}/c --layers conv1 --layer conv3".split(), *OUT],
        "--layer conv3 is not among --layers conv1, the taps the cache holds",
    ),
    ([*NB, *FITS, "--cache-dir", "{data}/c", *OUT], "--cache-dir {data}/c overlaps --data-dir"),
    ([*NB[:1], *NB[4:], *FITS, *OUT], "nothing to draw: give --checkpoint CKPT and/or"),
    ([*NB[:1], *NB[4:], "--checkpoint", "{tmp}/gone.pt", *OUT], "checkpoint not found"),
    ([*NB[:1], *NB[4:], "--checkpoint", "{ckpt}", "--size", "32", *OUT], "--size only applies"),
    ([*NB, *FITS, "--data-dir", "{oneclass}", *OUT], "has 1 class(es); a retrieval picture"),
    ([*NB[:4], *OUT], "sslx viz neighbours: error: Missing option '--data-dir'"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_input(bad_input, args, message):
    bad_input(["viz", *args], message, SETUPS)


def test_a_good_checkpoint_draws(tmp_path):
    assert (
        main(
            [
                "viz",
                "filters",
                str(_checkpoint(tmp_path)),
                "--out",
                str(tmp_path / "f.png"),
                *"--zoom 2 --columns 8".split(),
            ]
        )
        == 0
    )
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
