import cv2
import numpy as np
import pytest

from sslx.common.crops import (
    CropConfig,
    centre_crops,
    draw_crop,
    reduction,
    render_crop,
    sample_crops,
)
from sslx.errors import InputError


def test_crops_are_a_pure_function_of_seed_epoch_draw():
    config = CropConfig()
    a = sample_crops(1, 2, [5, 6, 7], 256, 256, config)
    b = sample_crops(1, 2, [7, 5], 256, 256, config)
    assert np.array_equal(a.x0[[2, 0]], b.x0) and np.array_equal(a.w[[2, 0]], b.w)
    assert not np.array_equal(a.w, sample_crops(1, 3, [5, 6, 7], 256, 256, config).w)
    assert not np.array_equal(a.w, sample_crops(2, 2, [5, 6, 7], 256, 256, config).w)


def test_centre_crops_are_resize_then_centre_crop():
    c = centre_crops(1, 256, 256, 224 / 256)  # DeepCluster's Resize(256) + CenterCrop(224)
    assert (c.x0[0], c.y0[0], c.w[0], c.h[0], c.flip[0]) == (16, 16, 224, 224, False)
    whole = centre_crops(2, 64, 64)
    assert (whole.x0 == 0).all() and (whole.w == 64).all()


def test_draw_crop_is_the_same_for_bytes_and_decoded_arrays():
    jpeg, full = _jpeg()
    rgb = np.ascontiguousarray(full[:, :, ::-1])
    config = CropConfig(crop_scale_min=0.02, crop_scale_max=0.1)  # small: full-size decode
    a = draw_crop(jpeg, 3, size=64, crop=config, seed=1, epoch=2, shape=(256, 256))
    b = draw_crop(rgb, 3, size=64, crop=config, seed=1, epoch=2)
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)


def test_crop_statistics_follow_random_resized_crop():
    # Square crops are never rejected, so their area is uniform in [min, max].
    square = CropConfig(crop_scale_min=0.2, crop_scale_max=0.9, aspect_ratio_min=1.0)
    c = sample_crops(0, 0, np.arange(20000), 256, 256, square)
    assert ((c.x0 >= 0) & (c.y0 >= 0) & (c.x0 + c.w <= 256) & (c.y0 + c.h <= 256)).all()
    area = c.w * c.h / 256**2
    assert area.min() > 0.19 and area.max() < 0.91
    hist = np.histogram(area, bins=7, range=(0.2, 0.9))[0] / len(area)
    assert np.all(np.abs(hist - 1 / 7) < 0.01)
    assert abs(c.flip.mean() - 0.5) < 0.015
    # Positions are uniform over the valid range: the mean offset sits in the middle.
    assert abs(np.mean(c.x0 / np.maximum(256 - c.w, 1)) - 0.5) < 0.02
    # Small crops always fit, so log(w / h) is uniform in [log 3/4, log 4/3].
    small = CropConfig(crop_scale_min=0.05, crop_scale_max=0.2, aspect_ratio_min=0.75)
    c = sample_crops(0, 0, np.arange(20000), 256, 256, small)
    log_ratio = np.log(c.w / c.h)
    hist = np.histogram(log_ratio, bins=5, range=(np.log(0.75), np.log(4 / 3)))[0]
    assert np.all(np.abs(hist / len(log_ratio) - 0.2) < 0.02)  # integer rounding blurs edges
    # Large non-square tries get rejected and retried, as in torchvision.
    big = sample_crops(0, 0, np.arange(5000), 256, 256, CropConfig(crop_scale_min=0.95))
    assert ((big.w <= 256) & (big.h <= 256)).all()


def test_bad_crop_settings_are_input_errors():
    with pytest.raises(InputError):
        CropConfig(crop_scale_min=0)
    with pytest.raises(InputError):
        CropConfig(flip_prob=2)


def test_reduction_never_undersamples_the_output():
    assert reduction(256, 64) == 4 and reduction(255, 64) == 2 and reduction(100, 64) == 1
    assert reduction(600, 64) == 8 and reduction(224, 224) == 1


def _jpeg(seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    bgr = np.stack([x, y, (x + y) // 2], 2).astype(np.float32)
    bgr += rng.normal(0, 4, bgr.shape)
    bgr = np.clip(bgr, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes(), cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_render_crop_matches_full_decode_and_flips_and_converts_to_rgb():
    jpeg, full = _jpeg()
    out = render_crop(jpeg, 0, 0, 256, 256, False, 64, (256, 256))  # decoded at 1/4
    reference = cv2.resize(full, (64, 64), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    mse = np.mean((out.astype(float) - reference.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30
    crop = render_crop(jpeg, 10, 20, 60, 50, False, 32, (256, 256))  # full-size decode
    ref = cv2.resize(full[20:70, 10:70], (32, 32), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    assert np.array_equal(crop, ref)
    flipped = render_crop(jpeg, 10, 20, 60, 50, True, 32, (256, 256))
    assert np.array_equal(flipped, crop[:, ::-1])
    # RGB: the red channel is the BGR image's last one (x + y) / 2, blue follows x.
    assert crop[16, 31, 2] > crop[16, 0, 2]


def test_render_crop_rejects_undecodable_or_wrong_size_jpegs():
    jpeg, _ = _jpeg()
    assert render_crop(b"not a jpeg", 0, 0, 10, 10, False, 8, (256, 256)) is None
    assert render_crop(jpeg, 0, 0, 100, 100, False, 64, (128, 128)) is None


def test_a_jpeg_claiming_too_many_pixels_is_refused_by_its_header(jpeg_claiming):
    """60000 x 60000 would end in an OpenCV assertion (or a 10 GB allocation): refused
    from the header, before any decoding, as an undecodable sample."""
    from sslx.common.crops import MAX_PIXELS, decode_rgb, jpeg_size

    _, encoded = cv2.imencode(".jpg", np.zeros((16, 24, 3), np.uint8))
    assert jpeg_size(encoded.tobytes()) == (16, 24)
    assert jpeg_size(b"\x89PNG....") is None and jpeg_size(b"\xff\xd8") is None
    huge = jpeg_claiming(60000)
    assert jpeg_size(huge) == (60000, 60000) and MAX_PIXELS < 60000**2
    assert decode_rgb(huge) is None
