"""Source photos: finding them, decoding them robustly, and their image pyramids.

Every source is normalised once to an 8-bit, 3-channel BGR array (OpenCV's order):
EXIF orientation applied, greyscale replicated, 16-bit scaled, alpha composited over
mid-grey. What was done is recorded per source in the manifest (`notes`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sslx.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
MIN_SOURCE_SIDE = 32
ALPHA_BACKGROUND = 128  # transparent pixels become mid-grey rather than black
DEFAULT_IMAGE_NAME = "coffee.png"  # Rachel Michetti, CC0 (as shipped with scikit-image)


def default_image() -> Path:
    """The built-in public-domain photo used when no --image is given."""
    return Path(str(resources.files("sslx.datagen") / "assets" / DEFAULT_IMAGE_NAME))


def expand_sources(paths: Sequence[str | Path]) -> list[Path]:
    """Files stay as given; a folder stands for its image files, sorted by name."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise InputError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
            found.extend(images)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"image not found: {path}")
    return found


@dataclass(frozen=True)
class SourceInfo:
    """What the manifest records about one source photo."""

    id: int
    name: str
    sha256: str
    height: int
    width: int
    mode: str  # PIL mode of the file as stored, e.g. "RGB", "RGBA", "I;16"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "sha256": self.sha256,
            "height": self.height,
            "width": self.width,
            "mode": self.mode,
            "notes": list(self.notes),
        }


@dataclass
class Source:
    """A decoded source photo and its Gaussian pyramid (level k is 2**k times smaller).

    Levels are stored as BGRA (alpha unused): OpenCV warps 4-channel images about 1.5×
    faster than 3-channel ones.
    """

    info: SourceInfo
    levels: list[np.ndarray] = field(repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) at full resolution."""
        return self.info.height, self.info.width

    @property
    def image(self) -> np.ndarray:
        """Full resolution, BGR."""
        return self.levels[0][:, :, :3]


def load_source(path: Path, source_id: int, min_side: int = MIN_SOURCE_SIDE) -> Source:
    """Decode, normalise and check one source photo; bad files raise InputError."""
    data = _read_bytes(path)
    image, mode, notes = decode_image(data, path)
    height, width = image.shape[:2]
    if min(height, width) < min_side:
        raise InputError(
            f"{path} is too small ({width}x{height}); sources need at least {min_side} px per side"
        )
    info = SourceInfo(
        id=source_id,
        name=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        height=height,
        width=width,
        mode=mode,
        notes=tuple(notes),
    )
    return Source(info=info, levels=build_pyramid(image))


def load_sources(paths: Sequence[Path], min_side: int = MIN_SOURCE_SIDE) -> list[Source]:
    return [load_source(p, i, min_side) for i, p in enumerate(paths)]


def build_pyramid(image: np.ndarray, min_side: int = 16) -> list[np.ndarray]:
    """Gaussian pyramid: warping from the level nearest the output scale is faster than
    from full resolution, and the pyramid's blur keeps big downscales from aliasing."""
    levels = [cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)]
    while min(levels[-1].shape[:2]) >= 2 * min_side:
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


def decode_image(data: bytes, path: Path) -> tuple[np.ndarray, str, list[str]]:
    """Bytes of an image file -> (H×W×3 uint8 BGR array, stored PIL mode, notes)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decode fully now, so truncation is caught here
            mode = im.mode
            notes: list[str] = []
            if im.getexif().get(0x0112, 1) != 1:
                notes.append("exif-orientation-applied")
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb8(im, notes)
    except UnidentifiedImageError:
        raise InputError(f"{path} is not a readable image (unknown format or corrupt)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path} is corrupt or truncated: {e}") from None
    return np.ascontiguousarray(rgb[:, :, ::-1]), mode, notes


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"image not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def _declared_bits(im: Image.Image) -> int:
    """Bits per sample of an integer greyscale image: TIFF says so (tag 258); PNG's "I"
    modes are its 16-bit greyscale."""
    tags = getattr(im, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None
    if isinstance(bits, tuple):
        bits = bits[0]
    return int(bits) if bits else 16


def _to_rgb8(im: Image.Image, notes: list[str]) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # The range comes from the declared type, never from the values: a dark 16-bit
        # image is dark, and a float image is [0, 1] (TIFF's SampleFormat convention).
        grey = np.asarray(im).astype(np.float64)
        if im.mode == "F":
            grey = grey * 255.0
            notes.append("float-0-1-scaled-to-8-bit")
        else:
            bits = _declared_bits(im)
            grey = grey * (255.0 / (2**bits - 1))  # 16 bits: 65535 -> 255
            notes.append(f"{bits}-bit-scaled-to-8-bit")
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        notes.append("greyscale-replicated")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode in ("1", "L"):
        notes.append("greyscale-replicated")
        return np.asarray(im.convert("RGB"))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32)
        alpha = rgba[:, :, 3:] / 255.0
        if (alpha < 1).any():
            notes.append("alpha-composited-over-grey")
        rgb = rgba[:, :, :3] * alpha + ALPHA_BACKGROUND * (1 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.asarray(im.convert("RGB"))
