"""Shared test fixtures: real data from ../shared/data and small synthetic photos."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SSLX_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `gpu` are skipped where torch sees no CUDA device."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_tests:
            item.add_marker(skip)


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
