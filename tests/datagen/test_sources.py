"""Source photos of every awkward kind are normalised or refused with a clear error."""

import io

import numpy as np
import pytest
from PIL import Image

from sslx.datagen.sources import default_image, expand_sources, load_source
from sslx.errors import InputError


def save(path, image: Image.Image, **kwargs):
    image.save(path, **kwargs)
    return path


def gradient(w=120, h=80) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 2, y * 3, (x + y)], axis=2).astype(np.uint8)


def test_default_image_is_shipped():
    src = load_source(default_image(), 0)
    assert (src.info.height, src.info.width) == (400, 600)
    assert src.image.shape == (400, 600, 3)


def test_greyscale_is_replicated(tmp_path):
    grey = Image.fromarray(gradient()[:, :, 0])
    src = load_source(save(tmp_path / "g.png", grey), 0)
    assert src.image.shape[2] == 3 and "greyscale-replicated" in src.info.notes
    np.testing.assert_array_equal(src.image[:, :, 0], src.image[:, :, 2])


def test_rgba_is_composited_over_grey(tmp_path):
    rgba = np.dstack([gradient(), np.full((80, 120), 255, np.uint8)])
    rgba[:, :60, 3] = 0  # left half fully transparent
    src = load_source(save(tmp_path / "a.png", Image.fromarray(rgba, "RGBA")), 0)
    assert src.info.mode == "RGBA" and "alpha-composited-over-grey" in src.info.notes
    assert (src.image[:, :60] == 128).all()
    np.testing.assert_array_equal(src.image[:, 60:, ::-1], gradient()[:, 60:])


def test_opaque_rgba_photo(shared_images):
    src = load_source(shared_images / "sf.png", 0)
    assert src.info.mode == "RGBA" and src.image.shape == (585, 1165, 3)
    assert "alpha-composited-over-grey" not in src.info.notes


def test_16_bit_is_scaled(tmp_path):
    sixteen = (gradient()[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    path = tmp_path / "d.png"
    Image.fromarray(sixteen).save(path)
    src = load_source(path, 0)
    assert "16-bit-scaled-to-8-bit" in src.info.notes
    np.testing.assert_array_equal(src.image[:, :, 1], gradient()[:, :, 0])


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(gradient())
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: display rotated 90° clockwise
    path = save(tmp_path / "e.jpg", image, exif=exif, quality=95)
    src = load_source(path, 0)
    assert src.image.shape[:2] == (120, 80)
    assert "exif-orientation-applied" in src.info.notes


@pytest.mark.parametrize("mode", ["P", "CMYK", "1"])
def test_other_modes_become_rgb(tmp_path, mode):
    image = Image.fromarray(gradient()).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    src = load_source(save(tmp_path / f"m{suffix}", image), 0)
    assert src.image.shape == (80, 120, 3) and src.image.dtype == np.uint8


def test_bad_files_are_refused(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(gradient(400, 300)).save(buf, format="JPEG")
    cases = {
        "missing.jpg": None,
        "empty.jpg": b"",
        "noise.jpg": np.random.default_rng(0).bytes(5000),
        "truncated.jpg": buf.getvalue()[: len(buf.getvalue()) // 2],
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(InputError) as e:
            load_source(path, 0)
        assert name in str(e.value) and "\n" not in str(e.value)


def test_tiny_images_are_refused(tmp_path):
    path = save(tmp_path / "tiny.png", Image.fromarray(gradient(20, 20)))
    with pytest.raises(InputError, match="too small"):
        load_source(path, 0)
    ok = save(tmp_path / "small.png", Image.fromarray(gradient(100, 100)))
    with pytest.raises(InputError, match="at least 256"):
        load_source(ok, 0, min_side=256)


def test_folders_expand_to_sorted_images(tmp_path):
    for name in ["b.png", "a.jpg", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in expand_sources([tmp_path])] == ["a.jpg", "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        expand_sources([tmp_path / "empty"])
    with pytest.raises(InputError, match="not found"):
        expand_sources([tmp_path / "nope.jpg"])


@pytest.mark.parametrize(
    "pixels, mode, want, note",
    [
        # 16-bit whose values are all <= 255: a dark image, not an 8-bit one.
        (np.full((40, 40), 255, np.uint16), "I;16", 1, "16-bit-scaled-to-8-bit"),
        (np.full((40, 40), 65535, np.uint16), "I;16", 255, "16-bit-scaled-to-8-bit"),
        # float in [0, 1]: mid-grey, not rounded to black or white.
        (np.full((40, 40), 0.5, np.float32), "F", 128, "float-0-1-scaled-to-8-bit"),
    ],
)
def test_the_pixel_range_comes_from_the_declared_type(tmp_path, pixels, mode, want, note):
    path = tmp_path / ("d.tif" if mode == "F" else "d.png")
    Image.fromarray(pixels).save(path)
    src = load_source(path, 0)
    assert src.info.mode == mode and note in src.info.notes
    assert (src.image == want).all(), np.unique(src.image)
