"""The views' photometric operations match torchvision's tensor implementations, per
sample, in each sample's own order."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from sslx.common.views import COLUMN, PARAMS
from sslx.train.ssl.augment import gaussian_blur, photometric


def _images(n=3, side=16):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)


def _params(n, **values):
    rows = torch.zeros(n, len(PARAMS))
    rows[:, COLUMN["brightness"] : COLUMN["saturation"] + 1] = 1.0
    rows[:, COLUMN["order0"] : COLUMN["order3"] + 1] = torch.arange(4.0)
    for name, column in values.items():
        rows[:, COLUMN[name]] = torch.as_tensor(column, dtype=torch.float32)
    return rows


def test_no_draws_is_the_identity():
    images = _images()
    out = photometric(images, _params(3))
    assert torch.equal(out, images.float() / 255)


def test_jitter_matches_torchvision_in_each_samples_order():
    images = _images()
    x = images.float() / 255
    factors = {"brightness": [1.3, 0.7, 1.0], "contrast": [0.6, 1.4, 1.2]}
    factors |= {"saturation": [1.5, 0.0, 0.8], "hue": [0.1, -0.05, 0.0]}
    orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]]
    params = _params(3, jitter=[1, 1, 0], **factors)
    params[:, COLUMN["order0"] : COLUMN["order3"] + 1] = torch.tensor(orders, dtype=torch.float32)
    out = photometric(images, params)
    ops = [
        lambda y, i: TF.adjust_brightness(y, factors["brightness"][i]),
        lambda y, i: TF.adjust_contrast(y, factors["contrast"][i]),
        lambda y, i: TF.adjust_saturation(y, factors["saturation"][i]),
        lambda y, i: TF.adjust_hue(y, factors["hue"][i]),
    ]
    for i in range(2):
        expected = x[i : i + 1]
        for op in orders[i]:
            expected = ops[op](expected, i)
        torch.testing.assert_close(out[i : i + 1], expected, atol=2e-5, rtol=0)
    assert torch.equal(out[2], x[2])  # its jitter draw is off


def test_grayscale_blur_and_solarize_match_torchvision():
    images = _images(side=20)
    x = images.float() / 255
    params = _params(3, grayscale=[1, 0, 0], solarize=[0, 0, 1])
    out = photometric(images, params)
    torch.testing.assert_close(out[0:1], TF.rgb_to_grayscale(x[0:1], 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[2:3], TF.solarize(x[2:3], 0.5), atol=0, rtol=0)
    sigma = torch.tensor([0.0, 1.2, 0.0])
    blurred = gaussian_blur(x, sigma)
    expected = TF.gaussian_blur(x[1:2], kernel_size=[9, 9], sigma=[1.2, 1.2])  # radius ceil(3.6)
    torch.testing.assert_close(blurred[1:2], expected, atol=1e-5, rtol=0)
    assert torch.equal(blurred[0], x[0])


def test_blur_sigma_is_in_224_px_units():
    images = _images(n=1, side=32)
    params = _params(1, blur_sigma=[2.0 * 224 / 32])  # sigma 2 px at 32 px
    out = photometric(images, params)
    expected = TF.gaussian_blur(images.float() / 255, kernel_size=[13, 13], sigma=[2.0, 2.0])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_autocast_does_not_touch_the_augmentation(dtype):
    images = _images()
    params = _params(3, jitter=[1, 1, 1], hue=[0.1, 0.1, 0.1], blur_sigma=[10.0, 0, 5.0])
    with torch.autocast("cpu", dtype=dtype):
        out = photometric(images, params)
    assert out.dtype == torch.float32
    assert np.isfinite(out.numpy()).all() and out.min() >= 0 and out.max() <= 1
