"""A view's draws are a pure function of (seed, epoch, sample, view), inside their ranges."""

import numpy as np

from sslx.common.sampling import CropConfig
from sslx.common.views import COLUMN, ViewSpec, draw_view

SPEC = ViewSpec(32, CropConfig(), blur_prob=0.5, solarize_prob=0.2)


def test_draws_depend_only_on_their_keys():
    a = draw_view(0, 1, 7, 0, 64, 64, SPEC)
    assert a[0] == draw_view(0, 1, 7, 0, 64, 64, SPEC)[0]
    assert np.array_equal(a[1], draw_view(0, 1, 7, 0, 64, 64, SPEC)[1])
    for other in [(1, 1, 7, 0), (0, 2, 7, 0), (0, 1, 8, 0), (0, 1, 7, 1)]:
        assert not np.array_equal(a[1], draw_view(*other, 64, 64, SPEC)[1])


def test_draws_follow_the_spec():
    rows = np.stack([draw_view(0, 0, i, 0, 64, 64, SPEC)[1] for i in range(4000)])
    assert abs(rows[:, COLUMN["jitter"]].mean() - 0.8) < 0.03
    assert abs(rows[:, COLUMN["grayscale"]].mean() - 0.2) < 0.03
    assert abs((rows[:, COLUMN["blur_sigma"]] > 0).mean() - 0.5) < 0.03
    assert abs(rows[:, COLUMN["solarize"]].mean() - 0.2) < 0.03
    sigma = rows[rows[:, COLUMN["blur_sigma"]] > 0, COLUMN["blur_sigma"]]
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0
    b, c, s, h = (rows[:, COLUMN[k]] for k in ("brightness", "contrast", "saturation", "hue"))
    assert b.min() >= 0.6 and b.max() <= 1.4 and s.min() >= 0.8 and s.max() <= 1.2
    assert c.min() >= 0.6 and h.min() >= -0.1 and h.max() <= 0.1
    orders = rows[:, COLUMN["order0"] : COLUMN["order3"] + 1]
    assert (np.sort(orders, axis=1) == np.arange(4)).all()  # a permutation each
    assert len({tuple(o) for o in orders}) == 24
    boxes = [
        draw_view(0, 0, i, 0, 64, 64, ViewSpec(32, CropConfig(0.05, 0.4)))[0] for i in range(500)
    ]
    areas = np.array([w * h for _, _, w, h, _ in boxes]) / 64**2
    assert areas.min() >= 0.04 and areas.max() <= 0.42


def test_no_blur_or_solarisation_unless_asked():
    rows = np.stack(
        [draw_view(3, 0, i, 1, 64, 64, ViewSpec(32, CropConfig()))[1] for i in range(500)]
    )
    assert not rows[:, COLUMN["blur_sigma"]].any() and not rows[:, COLUMN["solarize"]].any()
