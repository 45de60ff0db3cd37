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


def test_the_filters_picture_is_titled_and_keeps_the_grid_exact(tmp_path):
    import numpy as np
    from PIL import Image

    from sslx.probe.viz import filters_title, save_filters

    model = AlexNet(ModelConfig(input_size=64, sobel=True))
    title = filters_title("rotnet64", model)
    assert title == (
        "conv1 filters of rotnet64: 96 of 11x11 on the Sobel gradients, shown as grey filters"
    )
    plain, named = tmp_path / "plain.png", tmp_path / "named.png"
    assert save_filters(model, plain, zoom=2) == (2 * 169, 2 * 113)  # 13 px tiles + padding
    width, height = save_filters(model, named, zoom=2, title=title)
    grid, picture = np.asarray(Image.open(plain)), np.asarray(Image.open(named))
    band = height - grid.shape[0]
    assert band > 10 and width >= grid.shape[1]
    left = (width - grid.shape[1]) // 2
    assert np.array_equal(picture[band:, left : left + grid.shape[1]], grid)
    assert (picture[:band] < 100).any()  # the title's dark text on the white band
