"""`sslx viz style`: the Gram matrix, the losses' normalisation, L-BFGS, determinism and the
figure, on tiny networks (32 px, a few steps)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from sslx.atomic import save_torch_atomic
from sslx.cli import main
from sslx.probe.networks import random_network
from sslx.probe.style import (
    MARGIN,
    TITLE_PX,
    gram_matrix,
    load_image,
    losses,
    stylise,
    targets,
)
from sslx.train.checkpoint import build_checkpoint
from sslx.train.model import ModelConfig

SMALL = ModelConfig(input_size=32, classifier_width=16)  # conv1 stride 1: 16-px images fit


def _image(seed: int, height: int = 16, width: int = 16) -> torch.Tensor:
    """A smooth random picture, (1, 3, H, W) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 4, width // 4, generator=g)  # smooth, like a photo
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")


def _png(path, seed: int, height: int = 40, width: int = 48):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


class Identity:
    """A stand-in network whose every tap is the image itself: losses by hand."""

    config = SimpleNamespace(arch="alexnet")

    def taps(self, images, layers):
        return dict.fromkeys(layers, images)


def test_gram_matrix_of_a_hand_made_map():
    # Two channels over two positions: [1, 2] and [3, 4].
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    # F Fᵀ = [[1+4, 3+8], [3+8, 9+16]], over 2 positions.
    expected = torch.tensor([[[2.5, 5.5], [5.5, 12.5]]])
    assert torch.equal(gram_matrix(features), expected)


def test_the_losses_are_relative_to_the_targets_and_the_layers_weigh_alike():
    model, picture = Identity(), _image(0)
    target = targets(model, picture, picture)
    assert target.content_layer == "conv4" and len(target.grams) == 5
    content, style = losses(model, 2 * picture, target)
    # Features 2P against P: |2P - P|^2 / |P|^2 = 1. Gram 4G against G: |3G|^2 / |G|^2 = 9
    # at each of the five taps, averaged.
    assert content.item() == pytest.approx(1.0, rel=1e-6)
    assert style.item() == pytest.approx(9.0, rel=1e-6)


def test_style_loss_is_zero_for_the_style_image_and_content_loss_for_the_content():
    model = random_network(SMALL, seed=0).model.eval()
    content, style = _image(1), _image(2)
    target = targets(model, content, style)
    with torch.no_grad():
        _, style_loss = losses(model, style, target)
        content_loss, other_style = losses(model, content, target)
    assert style_loss.item() == 0.0 and content_loss.item() == 0.0
    assert other_style.item() > 0.01


def test_resnet18_keeps_layer3_as_content():
    model = random_network(ModelConfig(arch="resnet18", input_size=32), seed=0).model.eval()
    target = targets(model, _image(1), _image(2))
    assert target.content_layer == "layer3"
    assert list(target.grams) == ["stem", "layer1", "layer2", "layer3", "layer4"]


def test_a_few_lbfgs_steps_lower_the_total_loss():
    model = random_network(SMALL, seed=0).model
    content, style = _image(1), _image(2)
    result, history = stylise(model, content, style, 4, style_weight=100.0, content_weight=1.0)
    assert len(history) == 4  # one evaluation per iteration: --steps is a fixed count

    def total(image):
        with torch.no_grad():
            c, s = losses(model, image, targets(model, content, style))
        return (c + 100.0 * s).item()

    assert total(result) < 0.5 * total(content)  # the start: the content image itself
    assert history[0] == pytest.approx(total(content), rel=1e-5)
    assert result.min() >= 0 and result.max() <= 1 and result.shape == content.shape


def test_the_result_is_the_same_for_the_same_seed():
    content, style = _image(1), _image(2)
    runs = [
        stylise(random_network(SMALL, seed).model, content, style, 2, 100.0, 1.0)[0]
        for seed in (3, 3, 4)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])  # another network


def test_images_are_read_to_their_longer_side(tmp_path):
    image = load_image(_png(tmp_path / "a.png", 0, 40, 80), "--content", 64, 32)
    assert image.shape == (1, 3, 32, 64) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1


def test_the_cli_draws_content_style_and_one_panel_per_network(tmp_path, capsys):
    payload = build_checkpoint(
        config={},
        model=SMALL,
        method="rotnet",
        heads={},
        progress={},
        backbone=random_network(SMALL, seed=7).model.state_dict(),
    )
    (tmp_path / "one-image").mkdir()
    save_torch_atomic(payload, tmp_path / "one-image" / "checkpoint.pt")
    content, style = _png(tmp_path / "c.png", 1, 40, 40), _png(tmp_path / "s.png", 2, 36, 36)
    args = [
        *("viz", "style", "--content", str(content), "--style", str(style)),
        *("--checkpoint", str(tmp_path / "one-image"), "--random-init"),
        *"--size 32 --steps 2 --seed 5".split(),
    ]
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        assert main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.index("one-image: 2 L-BFGS steps") < err.index("random: 2 L-BFGS steps")
    with Image.open(outs[0]) as picture:
        # The content is 32 x 32 px: four panels of 32 px and their margins.
        assert picture.size == (4 * (32 + 2 * MARGIN), 2 * TITLE_PX + 32 + MARGIN)
    assert outs[0].read_bytes() == outs[1].read_bytes()  # same command, same bytes
