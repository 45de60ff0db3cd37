"""Sampling is a pure function of (seed, index), and its distributions match the paper."""

import math

import numpy as np
import pytest

from sslx.datagen import AugmentConfig, GenerateConfig, sample_params
from sslx.datagen.sampling import source_of

SQUARE = [(1000, 1000)]


def ks_uniform(values: np.ndarray, lo: float, hi: float) -> float:
    """Kolmogorov–Smirnov distance between `values` and U[lo, hi]."""
    v = np.sort((values - lo) / (hi - lo))
    n = len(v)
    return float(max(np.max(np.arange(1, n + 1) / n - v), np.max(v - np.arange(n) / n)))


def ks_limit(n: int) -> float:
    return 1.95 / math.sqrt(n)  # alpha = 0.001


@pytest.fixture(scope="module")
def params():
    config = GenerateConfig(n=10_000)
    return [sample_params(7, i, SQUARE, config) for i in range(10_000)]


def test_pure_function_of_seed_and_index():
    config = GenerateConfig()
    forward = [sample_params(3, i, SQUARE, config) for i in range(50)]
    backward = [sample_params(3, i, SQUARE, config) for i in reversed(range(50))][::-1]
    assert forward == backward
    assert sample_params(4, 10, SQUARE, config) != forward[10]
    assert len({(p.cx, p.cy, p.w) for p in forward}) == 50


def test_area_fraction_within_bounds_and_uniform(params):
    beta = AugmentConfig().crop_scale_min
    area = np.array([p.area_fraction for p in params])
    assert area.min() >= beta * (1 - 1e-9) and area.max() <= 1 + 1e-9
    # Below 3/4 every draw fits a square image, so no rejection bends the distribution.
    small = area[area < 0.75]
    assert ks_uniform(small, beta, 0.75) < ks_limit(len(small))
    assert np.mean([p.crop_fallback for p in params]) < 0.01


def test_aspect_ratio_log_uniform(params):
    gamma = AugmentConfig().aspect_ratio_min
    ratio = np.array([p.aspect_ratio for p in params if p.area_fraction < 0.75])
    assert ratio.min() >= gamma - 1e-9 and ratio.max() <= 1 / gamma + 1e-9
    assert ks_uniform(np.log(ratio), math.log(gamma), -math.log(gamma)) < ks_limit(len(ratio))


def test_rotation_uniform(params):
    angle = np.array([p.rotation_degrees for p in params])
    assert angle.min() >= -35 and angle.max() <= 35
    assert ks_uniform(angle, -35, 35) < ks_limit(len(angle))


def test_flip_rate(params):
    rate = np.mean([p.flip for p in params])
    assert abs(rate - 0.5) < 4 * math.sqrt(0.25 / len(params))


def test_colour_jitter_ranges(params):
    for name, lo, hi in [
        ("brightness", 0.6, 1.4),
        ("contrast", 0.6, 1.4),
        ("saturation", 0.6, 1.4),
        ("hue", -0.1, 0.1),
    ]:
        v = np.array([getattr(p, name) for p in params])
        assert ks_uniform(v, lo, hi) < ks_limit(len(v)), name


def test_rotated_crop_inside_image_whenever_it_fits(params):
    """Per axis: the rotated crop's bounding box lies inside the image where it can,
    and is centred where it cannot (the rest is filled by reflection)."""
    inside = 0
    for p in params:
        a = math.radians(p.rotation_degrees)
        half_w = (abs(math.cos(a)) * p.w + abs(math.sin(a)) * p.h) / 2
        half_h = (abs(math.sin(a)) * p.w + abs(math.cos(a)) * p.h) / 2
        for centre, half in ((p.cx, half_w), (p.cy, half_h)):
            if 2 * half <= 1000:
                assert half - 1e-6 <= centre <= 1000 - half + 1e-6
            else:
                assert centre == 500
        inside += 2 * half_w <= 1000 and 2 * half_h <= 1000
    assert inside > 0.5 * len(params)


def test_switches_leave_other_factors_unchanged():
    base = GenerateConfig()
    no_color = GenerateConfig(augment=AugmentConfig(color=False))
    no_rot = GenerateConfig(augment=AugmentConfig(rotation=False))
    no_scale = GenerateConfig(size=64, augment=AugmentConfig(scale=False))
    for i in range(100):
        p = sample_params(0, i, SQUARE, base)
        c = sample_params(0, i, SQUARE, no_color)
        r = sample_params(0, i, SQUARE, no_rot)
        s = sample_params(0, i, SQUARE, no_scale)
        assert (c.cx, c.cy, c.w, c.h, c.rotation_degrees, c.flip) == (
            p.cx,
            p.cy,
            p.w,
            p.h,
            p.rotation_degrees,
            p.flip,
        )
        assert (c.brightness, c.contrast, c.saturation, c.hue) == (1, 1, 1, 0)
        assert r.rotation_degrees == 0 and (r.w, r.h, r.brightness) == (p.w, p.h, p.brightness)
        assert (s.w, s.h) == (64, 64) and s.rotation_degrees == p.rotation_degrees


def test_presets_match_the_ablation_rows():
    assert AugmentConfig.from_preset("none") == AugmentConfig(
        scale=False, rotation=False, flip=False, color=False
    )
    assert AugmentConfig.from_preset("rot+scale") == AugmentConfig(color=False)
    assert AugmentConfig.from_preset("all", flip=False) == AugmentConfig(flip=False)


def test_sources_take_turns():
    counts = np.bincount([source_of(i, 3) for i in range(3001)])
    assert counts.max() - counts.min() <= 1


def test_released_preset_is_the_released_generators_recipe():
    """yukimasano/single_img_pretraining make_dataset_single.py (8562840): a random square of
    half the short side (L103), RandomResizedCrop area (1/500, 1) of it (L90-96) to 362 px,
    rotation and x-shear uniform in +-30 degrees (L107-108), centre crop 256 (L115),
    ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.5 in a random order (L120), no flip."""
    config = GenerateConfig(n=4000, size=256, augment=AugmentConfig.from_preset("released"))
    sizes = [(1280, 1920)]
    ps = [sample_params(3, i, sizes, config) for i in range(4000)]
    side = 640
    for p in ps:
        x0, y0, s = p.square
        assert s == side and 0 <= x0 <= 1920 - side and 0 <= y0 <= 1280 - side
        assert x0 <= p.cx - p.w / 2 + 1e-9 and p.cx + p.w / 2 <= x0 + side + 1e-9
        assert y0 <= p.cy - p.h / 2 + 1e-9 and p.cy + p.h / 2 <= y0 + side + 1e-9
        assert p.w * p.h >= side * side / 500 * (1 - 1e-9)
        assert abs(p.rotation_degrees) <= 30 and abs(p.shear_degrees) <= 30
        assert not p.flip and p.view == 256 / 362
        assert sorted(p.color_order) == sorted("bcsh")
        if not p.color_applied:
            assert (p.brightness, p.contrast, p.saturation, p.hue) == (1, 1, 1, 0)
    applied = np.mean([p.color_applied for p in ps])
    assert abs(applied - 0.5) < 0.04
    assert ks_uniform(np.array([p.shear_degrees for p in ps]), -30, 30) < ks_limit(4000)
    assert len({p.color_order for p in ps}) == 24
    record = ps[0].to_dict()
    assert {"square", "shear_degrees", "view", "color_applied", "color_order"} <= set(record)


def test_default_preset_records_none_of_the_released_extras():
    p = sample_params(7, 0, SQUARE, GenerateConfig(n=1))
    assert not {"square", "shear_degrees", "view", "color_applied", "color_order"} & set(
        p.to_dict()
    )


def test_released_extras_enter_the_dataset_identity_only_when_used():
    default = GenerateConfig().to_dict()["augment"]
    assert "shear_degrees" not in default and "initial_crop" not in default
    released = GenerateConfig(augment=AugmentConfig.from_preset("released"))
    assert GenerateConfig.from_dict(released.to_dict()) == released
    assert GenerateConfig.from_dict(GenerateConfig().to_dict()) == GenerateConfig()
