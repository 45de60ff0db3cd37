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
