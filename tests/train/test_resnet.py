"""ResNet-18 as an sslx backbone: its taps and their shapes, the small-input stem, its
record in the checkpoint, and what trains it and what probes it."""

import json

import pytest
import torch

from sslx.cli import main
from sslx.errors import InputError
from sslx.train.backbone import build_backbone
from sslx.train.checkpoint import load_backbone
from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import train
from sslx.train.model import ModelConfig
from sslx.train.taps import probe_dims


@pytest.mark.parametrize("size", [32, 64, 160])
def test_taps_have_the_declared_shapes(size):
    config = ModelConfig(arch="resnet18", input_size=size)
    model = build_backbone(config).eval()
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    taps = model.taps(images, config.layers)
    assert list(taps) == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert {k: tuple(v.shape[1:]) for k, v in taps.items()} == config.tap_shapes()
    assert model(images).shape == (2, 512) and model.embed_dim == 512
    small = size < 128  # SimCLR's CIFAR stem: 3x3 stride 1, no max-pool
    assert model.first_conv().kernel_size == ((3, 3) if small else (7, 7))
    assert config.tap_shapes()["layer1"][1] == (size if small else size // 4)


def test_probe_dimensions_stay_near_nine_thousand():
    dims = probe_dims(ModelConfig(arch="resnet18", input_size=32))
    assert dims == {"stem": 9216, "layer1": 9216, "layer2": 8192, "layer3": 9216, "layer4": 8192}


def test_layers_are_checked_against_the_architecture(shards):
    with pytest.raises(InputError, match="resnet18 has no layer conv1"):
        TrainConfig.for_method("rotnet", shards=str(shards), arch="resnet18", freeze=("conv1",))
    with pytest.raises(InputError, match="bigan trains alexnet, not --arch resnet18"):
        TrainConfig.for_method("bigan", shards=str(shards), arch="resnet18")


def test_a_resnet_run_is_recorded_and_probed(shards, image_folder, tmp_path):
    small = dict(batch_size=32, epochs=1, hidden_dim=16, projection_dim=8, shuffle_buffer=32)
    config = TrainConfig.for_method(
        "simclr", shards=str(shards), arch="resnet18", input_size=32, **small
    )
    result = train(config, tmp_path / "run", RunOptions(workers=0, quiet=True, max_steps=2))
    assert result.progress.global_step == 2
    model, record = load_backbone(tmp_path / "run")
    assert record["model"]["arch"] == "resnet18" and type(model).__name__ == "ResNet18"
    out = tmp_path / "probe"
    args = ["probe", "--checkpoint", str(tmp_path / "run"), "--random-init", "--arch", "resnet18"]
    args += ["--data-dir", str(image_folder), "--epochs", "1", "--batch-size", "8"]
    args += ["--workers", "0", "--quiet", "--out", str(out)]
    assert main(args) == 0
    text = (out / "results.md").read_text()
    assert "layer4" in text and "conv1" not in text
    names = [r["name"] for r in json.loads((out / "results.json").read_text())["results"]]
    assert names == ["run", "random-resnet18"]  # "random" is the paper's AlexNet row
    assert main([*args[:-1], str(tmp_path / "p2"), "--layers", "conv1"]) == 2
