"""The fast renderer does what the parameters say, and matches a slow step-by-step one."""

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from sslx.datagen import GenerateConfig, PatchParams, render_patch, sample_params
from sslx.datagen.render import _RGB_TO_YIQ, _YIQ_TO_RGB, LUMA_RGB, colour_matrix
from sslx.datagen.sources import load_source

IDENTITY = PatchParams(
    index=0,
    source=0,
    cx=132.0,
    cy=82.0,
    w=64.0,
    h=64.0,
    area_fraction=0.0,
    aspect_ratio=1.0,
    crop_fallback=False,
    rotation_degrees=0.0,
    flip=False,
    brightness=1.0,
    contrast=1.0,
    saturation=1.0,
    hue=0.0,
)


@pytest.fixture(scope="module")
def source(photo):
    return load_source(photo, 0)


def test_plain_window_is_an_exact_copy(source):
    patch = render_patch(source, IDENTITY, 64)
    np.testing.assert_array_equal(patch, source.image[50:114, 100:164])


def test_flip_mirrors(source):
    patch = render_patch(source, replace(IDENTITY, flip=True), 64)
    np.testing.assert_array_equal(patch, source.image[50:114, 100:164, :][:, ::-1])


def test_positive_angle_rotates_content_counter_clockwise(source):
    patch = render_patch(source, replace(IDENTITY, rotation_degrees=90.0), 64)
    expected = np.rot90(source.image[50:114, 100:164], k=1)  # counter-clockwise
    assert np.abs(patch.astype(int) - expected).max() <= 1


def test_crop_is_resized_to_size(source):
    patch = render_patch(source, replace(IDENTITY, w=128.0, h=96.0), 32)
    window = np.ascontiguousarray(source.image[82 - 48 : 82 + 48, 132 - 64 : 132 + 64])
    expected = cv2.resize(window, (32, 32), interpolation=cv2.INTER_AREA)
    assert patch.shape == (32, 32, 3)
    assert np.abs(patch.astype(float) - expected).mean() < 6


def step_by_step_colour(rgb: np.ndarray, b: float, c: float, s: float, h: float) -> np.ndarray:
    """Brightness, contrast, saturation, hue as four separate passes (float, no clipping)."""
    x = rgb * b
    x = c * x + (1 - c) * (x @ LUMA_RGB).mean()
    x = s * x + (1 - s) * (x @ LUMA_RGB)[..., None]
    t = 2 * math.pi * h
    rot = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    return x @ (_YIQ_TO_RGB @ rot @ _RGB_TO_YIQ).T


def test_colour_matrix_equals_the_four_passes():
    rgb = np.random.default_rng(0).uniform(0, 255, (16, 16, 3))
    for b, c, s, h in [(1.3, 0.7, 1.2, 0.08), (0.6, 1.4, 0.6, -0.1), (1, 1, 1, 0)]:
        m = colour_matrix(b, c, s, h, rgb.reshape(-1, 3).mean(0))
        fused = rgb @ m[:, :3].T + m[:, 3]
        np.testing.assert_allclose(fused, step_by_step_colour(rgb, b, c, s, h), atol=1e-9)


def reference_patch(image_bgr: np.ndarray, p: PatchParams, size: int) -> np.ndarray:
    """Slow reference: rotated crop at native resolution from the full image, area resize,
    flip, then the four colour passes in float, clipped once."""
    w, h = max(1, round(p.w)), max(1, round(p.h))
    a = math.radians(p.rotation_degrees)
    cos, sin = math.cos(a), math.sin(a)
    sx, sy = p.w / w, p.h / h
    o_x, o_y = 0.5 - w / 2, 0.5 - h / 2
    m = np.array(
        [
            [cos * sx, -sin * sy, p.cx + cos * sx * o_x - sin * sy * o_y - 0.5],
            [sin * sx, cos * sy, p.cy + sin * sx * o_x + cos * sy * o_y - 0.5],
        ]
    )
    crop = cv2.warpAffine(
        image_bgr,
        m,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    patch = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    if p.flip:
        patch = patch[:, ::-1]
    rgb = patch[:, :, ::-1].astype(float)
    rgb = step_by_step_colour(rgb, p.brightness, p.contrast, p.saturation, p.hue)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)[:, :, ::-1]


def test_fast_renderer_matches_reference_statistics(shared_images: Path):
    """The pyramid + fused warp + fused colour matrix change pixels only by
    interpolation noise: per-patch error is small and global statistics agree."""
    src = load_source(shared_images / "ameyoko.jpg", 0)
    image = np.ascontiguousarray(src.image)
    config = GenerateConfig(size=128)
    sizes = [image.shape[:2]]
    psnr, shift, fast_all, ref_all = [], [], [], []
    for i in range(60):
        p = sample_params(0, i, sizes, config)
        fast = render_patch(src, p, 128).astype(float)
        ref = reference_patch(image, p, 128).astype(float)
        mse = max(np.mean((fast - ref) ** 2), 1e-3)
        psnr.append(10 * math.log10(255**2 / mse))
        (dx, dy), _ = cv2.phaseCorrelate(fast.mean(2), ref.mean(2))
        shift.append(math.hypot(dx, dy))
        fast_all.append(fast.reshape(-1, 3))
        ref_all.append(ref.reshape(-1, 3))
    fast_all, ref_all = np.concatenate(fast_all), np.concatenate(ref_all)
    # Misregistration between pyramid levels would show as a sub-pixel shift.
    assert np.mean(shift) < 0.1, np.mean(shift)
    # The pyramid's Gaussian and the reference's area filter differ a little.
    assert np.median(psnr) > 27, np.median(psnr)
    np.testing.assert_allclose(fast_all.mean(0), ref_all.mean(0), atol=1.0)
    np.testing.assert_allclose(fast_all.std(0), ref_all.std(0), rtol=0.03)


def test_patches_have_the_right_size_and_differ(source):
    config = GenerateConfig(size=48)
    sizes = [source.image.shape[:2]]
    patches = [render_patch(source, sample_params(1, i, sizes, config), 48) for i in range(64)]
    assert all(p.shape == (48, 48, 3) and p.dtype == np.uint8 for p in patches)
    flat = np.stack([p.reshape(-1) for p in patches]).astype(int)
    distances = np.abs(flat[:, None] - flat[None]).mean(-1)
    assert distances[~np.eye(64, dtype=bool)].min() > 1.0


def step_by_step_in_order(rgb: np.ndarray, b, c, s, h, order: str) -> np.ndarray:
    """The four jitter passes in `order`, as torchvision's ColorJitter with a drawn order."""
    t = 2 * math.pi * h
    rot = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    x = rgb
    for step in order:
        if step == "b":
            x = x * b
        elif step == "c":
            x = c * x + (1 - c) * (x @ LUMA_RGB).mean()
        elif step == "s":
            x = s * x + (1 - s) * (x @ LUMA_RGB)[..., None]
        else:
            x = x @ (_YIQ_TO_RGB @ rot @ _RGB_TO_YIQ).T
    return x


@pytest.mark.parametrize("order", ["bcsh", "hscb", "csbh", "sbhc"])
def test_ordered_colour_matrix_equals_the_passes_in_that_order(order):
    """The released generator (single_img_pretraining make_dataset_single.py L120) uses
    torchvision's ColorJitter, whose four steps run in a random order per sample."""
    from sslx.datagen.render import ordered_colour_matrix

    rgb = np.random.default_rng(1).uniform(0, 255, (16, 16, 3))
    b, c, s, h = 1.3, 0.7, 1.2, 0.08
    m = ordered_colour_matrix(b, c, s, h, order, rgb.reshape(-1, 3).mean(0))
    fused = rgb @ m[:, :3].T + m[:, 3]
    np.testing.assert_allclose(fused, step_by_step_in_order(rgb, b, c, s, h, order), atol=1e-9)
    if order == "bcsh":
        np.testing.assert_allclose(m, colour_matrix(b, c, s, h, rgb.reshape(-1, 3).mean(0)))


def test_shear_moves_rows_along_x_and_view_is_the_central_window(source):
    """RandomAffine's x-shear (make_dataset_single.py L107-108) and the 362 -> 256 centre
    crop (L115), as one warp."""
    from sslx.datagen.render import patch_to_source_affine

    sheared = replace(IDENTITY, shear_degrees=45.0)
    m = patch_to_source_affine(sheared, 64)
    np.testing.assert_allclose(m[:, :2], [[1.0, 1.0], [0.0, 1.0]], atol=1e-12)
    viewed = replace(IDENTITY, w=128.0, h=128.0, view=0.5)
    patch = render_patch(source, viewed, 64)
    np.testing.assert_array_equal(patch, source.image[50:114, 100:164])  # central half
