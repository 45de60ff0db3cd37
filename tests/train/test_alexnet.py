import math

import pytest
import torch

from sslx.errors import InputError
from sslx.train.alexnet import CONV_LAYERS, AlexNet, ModelConfig


@pytest.mark.parametrize(
    ("size", "stride", "sides"),
    [
        (224, 4, {"conv1": 55, "conv2": 27, "conv3": 13, "conv4": 13, "conv5": 13, "pool5": 6}),
        (64, 2, {"conv1": 32, "conv2": 15, "conv3": 7, "conv4": 7, "conv5": 7, "pool5": 3}),
        (32, 1, {"conv1": 32, "conv2": 15, "conv3": 7, "conv4": 7, "conv5": 7, "pool5": 3}),
    ],
)
def test_shapes_at_224_64_32(size, stride, sides):
    config = ModelConfig(input_size=size, classifier_width=128).resolved()
    assert config.conv1_stride == stride
    assert config.spatial_sizes() == sides
    model = AlexNet(config).eval()
    x = torch.rand(2, 3, size, size)
    taps = model.taps(x)
    assert list(taps) == list(CONV_LAYERS)
    for name, shape in config.tap_shapes().items():
        assert taps[name].shape == (2, *shape)
        assert (taps[name] >= 0).all()  # taps are after ReLU
    assert model.flat_dim == 256 * sides["pool5"] ** 2
    assert model(x).shape == (2, 128)


def test_sobel_front_end_is_two_frozen_channels():
    model = AlexNet(ModelConfig(input_size=64, sobel=True, classifier_width=32))
    assert model.convs["conv1"][0].in_channels == 2
    assert "sobel_weight" not in dict(model.named_parameters())
    flat = torch.full((1, 3, 64, 64), 0.5)
    # A flat grey image has zero gradients inside (the border sees zero padding).
    assert model.prepare(flat)[..., 2:-2, 2:-2].abs().max() < 1e-5
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    gx, gy = model.prepare(ramp)[0, :, 8:-8, 8:-8]
    assert gx.abs().mean() > 0.1 and gy.abs().max() < 1e-5


def test_uint8_input_equals_unit_float_input():
    model = AlexNet(ModelConfig(input_size=32, classifier_width=16)).eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(model(x), model(x.float() / 255))


def test_deepcluster_initialisation():
    torch.manual_seed(0)
    model = AlexNet(ModelConfig(input_size=64))
    conv2 = model.convs["conv2"][0]
    n = 5 * 5 * 256
    assert conv2.weight.std().item() == pytest.approx(math.sqrt(2 / n), rel=0.02)
    assert conv2.bias.abs().max() == 0
    fc = model.fc6[1]
    assert fc.weight.std().item() == pytest.approx(0.01, rel=0.02)


def test_too_small_input_and_unknown_names_are_input_errors():
    with pytest.raises(InputError, match="no feature map"):
        ModelConfig(input_size=8).resolved()
    with pytest.raises(InputError, match="no feature map"):
        ModelConfig(input_size=64, conv1_stride=8).resolved()
    with pytest.raises(InputError, match="--arch must be one of alexnet, resnet18"):
        ModelConfig(arch="vgg").resolved()
    with pytest.raises(InputError, match="conv6"):
        model = AlexNet(ModelConfig(input_size=32, classifier_width=8))
        model.taps(torch.rand(1, 3, 32, 32), ["conv6"])


def test_taps_stop_at_the_deepest_requested_layer():
    model = AlexNet(ModelConfig(input_size=64, classifier_width=8)).eval()
    called = []
    model.convs["conv3"].register_forward_hook(lambda *a: called.append(1))
    assert list(model.taps(torch.rand(1, 3, 64, 64), ["conv2"])) == ["conv2"]
    assert not called


def test_sobel_grey_is_the_plain_mean_of_the_normalised_channels():
    """facebookresearch/deepcluster models/alexnet.py: the grey level before the Sobel filters
    is a 1x1 conv with every weight 1/3 on the normalised input (not luma weights)."""
    model = AlexNet(ModelConfig(input_size=32, sobel=True, classifier_width=16))
    x = torch.rand(1, 3, 32, 32)
    normalised = (x - model.mean) / model.std
    grey = normalised.mean(1, keepdim=True)
    expected = torch.nn.functional.conv2d(grey, model.sobel_weight, padding=1)
    torch.testing.assert_close(model.prepare(x), expected)
