"""Shared test fixtures: real data from ../shared/data, small synthetic photos, and tiny
labelled datasets (a class-per-folder tree and torchvision's CIFAR pickles)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sslx.train.labelled import CIFAR

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SSLX_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_images() -> Path:
    path = SHARED_DATA / "images"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set SSLX_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    """A 320×240 synthetic 'photo' with structure at several scales and colours."""
    rng = np.random.default_rng(0)
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [
            127 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0),
            127 + 100 * np.sin((x + y) / 23.0),
            127 + 60 * np.cos(x / 3.0) + rng.normal(0, 20, (h, w)),
        ],
        axis=2,
    )
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
    return path


# Each class is a colour; the images are that colour plus noise, so probes can learn it.
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (50, 60, 210)}


def class_images(n_per_class: int, side: int, seed: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    images = {}
    for name, colour in COLOURS.items():
        base = np.array(colour, dtype=np.float32)
        noise = rng.normal(0, 40, (n_per_class, side, side, 3))
        images[name] = list(np.clip(base + noise, 0, 255).astype(np.uint8))
    return images


def make_image_folder(root: Path, n_per_class: int = 20, side: int = 24, seed: int = 0) -> Path:
    for name, images in class_images(n_per_class, side, seed).items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{i:03d}.png")
    return root


def make_cifar10(root: Path, n_per_class: int = 4) -> Path:
    """torchvision's cifar-10-batches-py layout with a few 32 px images per class."""
    fmt = CIFAR["cifar10"]
    folder = root / fmt.folder
    folder.mkdir(parents=True)
    images = class_images(n_per_class, 32, seed=1)
    names = [*COLOURS, *(f"class{i}" for i in range(len(COLOURS), 10))]
    rows = [(img, label) for label, c in enumerate(COLOURS) for img in images[c]]
    data = np.stack([img.transpose(2, 0, 1).reshape(-1) for img, _ in rows])
    labels = [label for _, label in rows]
    for file in (*fmt.train_files, *fmt.test_files):
        with open(folder / file, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": file}, f)
    with open(folder / fmt.meta_file, "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": len(rows)}, f)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """3 colour classes x 20 images of 24 px."""
    return make_image_folder(tmp_path_factory.mktemp("folder") / "train")


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    return make_cifar10(tmp_path_factory.mktemp("cifar"))
