"""Small generated shard sets shared by the train tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sslx.datagen import AugmentConfig, GenerateConfig, generate


def make_shards(photo: Path, out: Path, n: int, shard_size: int, size: int = 64) -> Path:
    config = GenerateConfig(
        n=n, size=size, seed=3, jpeg_quality=90, shard_size=shard_size, augment=AugmentConfig()
    )
    generate(config, [photo], out, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def shards(photo, tmp_path_factory) -> Path:
    """240 patches of 64 px in 5 shards of 50 (the last one 40)."""
    return make_shards(photo, tmp_path_factory.mktemp("shards") / "s", n=240, shard_size=50)


@pytest.fixture(scope="session")
def shard_maker():
    """`make_shards(photo, out, n, shard_size, size=64)` for tests that need other data."""
    return make_shards
