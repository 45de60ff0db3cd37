"""`sslx viz filters` on bad input: one `sslx: error:` line, exit 2, nothing written.

One row per case: arguments (`{name}` runs the setup of that name) and a fragment of the
expected message. `{ro}` is a read-only folder, `{tmp}` the test folder."""

import argparse

import pytest
import torch

from sslx.cli import main
from sslx.train.alexnet import ModelConfig
from sslx.train.checkpoint import build_checkpoint, save_atomic


def _checkpoint(t, backbone=None):
    model = ModelConfig(input_size=32, classifier_width=16)
    if backbone is None:
        from sslx.train.alexnet import AlexNet

        backbone = AlexNet(model).state_dict()
    payload = build_checkpoint(config={}, model=model, method="rotnet", heads={}, progress={},
                               backbone=backbone)  # fmt: skip
    save_atomic(payload, t / "c.pt")
    return t / "c.pt"


SETUPS = {
    "ckpt": _checkpoint,
    "unfit": lambda t: _checkpoint(t, {"convs.conv1.0.weight": torch.zeros(3)}),
    "foreign": lambda t: torch.save({"state_dict": {}}, t / "f.pt") or t / "f.pt",
    "pickle": lambda t: torch.save(argparse.Namespace(a=1), t / "o.pt") or t / "o.pt",
}

OUT = ["--out", "{tmp}/f.png"]
CASES = [
    (["{ckpt}", "--zoom", "0", *OUT], "--zoom must be between 1 and 64"),
    (["{ckpt}", "--zoom", "100000", *OUT], "--zoom must be between 1 and 64"),
    (["{ckpt}", "--columns", "0", *OUT], "--columns must be between"),
    (["{ckpt}", "--out", "{tmp}/x.txt"], "--out must be a .png file"),
    (["{ckpt}", "--out", "{ro}/f.png"], "cannot write {ro}: Read-only file system"),
    (["{foreign}", *OUT], "is not an sslx checkpoint"),
    (["{pickle}", *OUT], "is not an sslx checkpoint"),
    (["{unfit}", *OUT], "weights do not match"),
    (["{tmp}/missing.pt", *OUT], "checkpoint not found"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_input(bad_input, args, message):
    bad_input(["viz", "filters", *args], message, SETUPS)


def test_a_good_checkpoint_draws(tmp_path):
    assert main(["viz", "filters", str(_checkpoint(tmp_path)), "--out", str(tmp_path / "f.png"),
                 "--zoom", "2", "--columns", "8"]) == 0  # fmt: skip
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
