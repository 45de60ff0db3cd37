import torch
import torch.nn.functional as F

from sslx.probe.viz import conv1_filters, filter_grid, sobel_equivalent
from sslx.train.alexnet import AlexNet, ModelConfig


def test_sobel_equivalent_filter_is_the_composition_of_both_convolutions():
    sobel = AlexNet(ModelConfig(input_size=64, sobel=True)).sobel_weight
    weight = torch.randn(4, 2, 5, 5)
    image = torch.randn(1, 1, 30, 30)
    two_steps = F.conv2d(F.conv2d(image, sobel, padding=1), weight)
    one_step = F.conv2d(image, sobel_equivalent(weight, sobel), padding=1)
    assert torch.allclose(two_steps, one_step, atol=1e-4)


def test_filters_are_tiles_of_rgb_or_grey_images():
    rgb = conv1_filters(AlexNet(ModelConfig(input_size=64)))
    grey = conv1_filters(AlexNet(ModelConfig(input_size=64, sobel=True)))
    assert rgb.shape == (96, 3, 11, 11) and grey.shape == (96, 1, 13, 13)
    grid = filter_grid(rgb, columns=12, zoom=2)
    assert grid.shape == (3, 2 * (8 * 12 + 1), 2 * (12 * 12 + 1))
    assert grid.min() >= 0 and grid.max() <= 1
