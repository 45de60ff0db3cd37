"""Refactors keep behaviour: the same patch parameters, and the same weights after a short
training run, as when these values were recorded (tests/golden/).

The patch parameters (each sample's JSON sidecar) were recorded before the seed-scheme
refactor and must never change for a given seed. The training fingerprints were recorded
after it (it deliberately moved training randomness to named streams); a structural change
must leave them as they are. Re-record on purpose only: SSLX_UPDATE_GOLDEN=1 pytest this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
import torch

from sslx.datagen import AugmentConfig, GenerateConfig, generate
from sslx.datagen.sources import default_image
from sslx.train.alexnet import ModelConfig
from sslx.train.config import OptimConfig, RunOptions, TrainConfig
from sslx.train.loop import train

GOLDEN = Path(__file__).parent / "golden" / "refactor.json"
UPDATE = os.environ.get("SSLX_UPDATE_GOLDEN") == "1"
# Recorded at commit 8d9809c (before the refactor) with the shipped Hubble image.
PATCH_PARAMS = {
    "all": "cf516a87b84c1832bcab0730b24b19b5b443d09a366f4e1a0660001ae1fc8d3d",
    "none": "e498fc5984da39c1adfaa3d532b55a1d1183a9902dcaee213a3b7d8016c94ec9",
}


def _shards(out: Path, preset: str) -> Path:
    config = GenerateConfig(
        n=300, size=64, seed=7, jpeg_quality=90, shard_size=100,
        augment=AugmentConfig.from_preset(preset),
    )  # fmt: skip
    generate(config, [default_image()], out, workers=1, progress=False)
    return out


def _params_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for shard in sorted(folder.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    digest.update(tar.extractfile(member).read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def golden_shards(tmp_path_factory) -> Path:
    return _shards(tmp_path_factory.mktemp("golden") / "all", "all")


@pytest.mark.parametrize("preset", sorted(PATCH_PARAMS))
def test_patch_parameters_are_unchanged(preset, golden_shards, tmp_path):
    folder = golden_shards if preset == "all" else _shards(tmp_path / preset, preset)
    assert _params_digest(folder) == PATCH_PARAMS[preset]


def _fingerprint(state: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Per tensor: sum, sum of squares and the first three values."""
    out = {}
    for name, t in sorted(state.items()):
        if t.is_floating_point():
            flat = t.detach().double().flatten()
            out[name] = [flat.sum().item(), (flat * flat).sum().item(), *flat[:3].tolist()]
    return out


def test_short_rotnet_run_gives_the_recorded_weights(golden_shards, tmp_path):
    optim = OptimConfig(
        batch_size=16, epochs=1, lr=0.05, momentum=0.9, weight_decay=5e-4,
        nesterov=True, lr_milestones=(), lr_gamma=0.1,
    )  # fmt: skip
    config = TrainConfig(
        shards=str(golden_shards), method="rotnet", optim=optim, shuffle_buffer=32, seed=3,
        model=ModelConfig(input_size=32, conv1_stride=2, classifier_width=32),
    )  # fmt: skip
    result = train(config, tmp_path / "run", RunOptions(workers=0, progress=False))
    got = _fingerprint(result.method.state_dict())
    if UPDATE:
        GOLDEN.write_text(json.dumps({"rotnet": got}, indent=1) + "\n")
    recorded = json.loads(GOLDEN.read_text())["rotnet"]
    assert sorted(got) == sorted(recorded)
    for name, values in recorded.items():
        assert got[name] == pytest.approx(values, rel=1e-4, abs=1e-6), name
