"""Refactors keep behaviour: the same patch parameters, the same training inputs and the
same weights after a short training run, as when these values were recorded (tests/golden/).

The patch parameters (each sample's JSON sidecar) were recorded before the seed-scheme
refactor and must never change for a given seed.

Training is checked in two parts, so that the check holds on every CPU:
- what must be exact is compared exactly: the init digest, the crop parameters and, per
  step, the sample indices and a digest of the uint8 pixels the step trained on;
- the weights come from a run in float64 (every parameter, buffer and the loss), compared
  with a tolerance. In float32 the kernels of ATen, oneDNN and MKL move the weights by up
  to 2.6e-3 of a tensor's scale between the AVX2, AVX-512 and AMX paths of one machine
  after 18 steps; in float64 by at most 2e-15 (benchmarks/golden_spread.py measures both;
  docs/benchmarks.md has the figures). `WEIGHTS_RTOL` = 1e-7 sits far from both that
  spread and a real change: a 1% larger learning rate moves them by 4.5e-3, another crop
  or sample order by 6e-2 (`test_a_real_change_is_caught`).

Re-record on purpose only: SSLX_UPDATE_GOLDEN=1 pytest this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sslx.common.crops import CropConfig, sample_crops
from sslx.datagen import AugmentConfig, GenerateConfig, generate
from sslx.train import loop
from sslx.train.config import RunOptions, TrainConfig

GOLDEN = Path(__file__).parent / "golden" / "refactor.json"
# The built-in photo until coffee.png replaced it (issue 27); kept here for the record.
HUBBLE = Path(__file__).parent / "golden" / "hubble_deep_field.jpg"
UPDATE = os.environ.get("SSLX_UPDATE_GOLDEN") == "1"
# Recorded at commit 8d9809c (before the refactor) with the Hubble image.
PATCH_PARAMS = {
    "all": "cf516a87b84c1832bcab0730b24b19b5b443d09a366f4e1a0660001ae1fc8d3d",
    "none": "e498fc5984da39c1adfaa3d532b55a1d1183a9902dcaee213a3b7d8016c94ec9",
}
# Relative to each tensor's scale (its root mean square); see the module docstring.
WEIGHTS_RTOL = 1e-7


def _shards(out: Path, preset: str) -> Path:
    augment = AugmentConfig.from_preset(preset)
    config = GenerateConfig(n=300, size=64, seed=7, shard_size=100, augment=augment)
    generate(config, [HUBBLE], out, workers=1, progress=False)
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


def golden_config(shards: Path) -> TrainConfig:
    """The recorded run: RotNet, 32 px, one epoch of 18 steps of 16 images."""
    return TrainConfig.for_method(
        "rotnet",
        shards=str(shards),
        batch_size=16,
        epochs=1,
        lr=0.05,
        lr_milestones=(),
        shuffle_buffer=32,
        seed=3,
        input_size=32,
        conv1_stride=2,
        classifier_width=32,
    )


@contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _init(config: TrainConfig) -> dict:
    """The float32 init: a digest of its bytes and its fingerprint. torch draws normals
    with its AVX2 kernel on every x86-64 CPU with AVX2 or AVX-512 (the same bits); CPUs
    without it (ATEN_CPU_CAPABILITY=default, ARM) round the last bit differently."""
    state = loop.build_method(config).state_dict()
    digest = _sha(b"".join(state[k].numpy().tobytes() for k in sorted(state)))
    return {"digest": digest, "fingerprint": _fingerprint(state)}


def _crops_digest(config: TrainConfig) -> str:
    crops = sample_crops(config.seed, 0, range(300), 64, 64, config.crop)
    return _sha(b"".join(getattr(crops, f).tobytes() for f in ("x0", "y0", "w", "h", "flip")))


def _fingerprint(state: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Per tensor: sum, sum of squares and the first three values."""
    out = {}
    for name, t in sorted(state.items()):
        if t.is_floating_point():
            flat = t.detach().double().flatten()
            out[name] = [flat.sum().item(), (flat * flat).sum().item(), *flat[:3].tolist()]
    return out


def run_golden(config: TrainConfig, out: Path, monkeypatch, dtype=torch.float64) -> dict:
    """Train `config` in `dtype`; the weights' fingerprint and, per step, the sample
    indices and a digest of the pixels."""
    steps = []
    real_step = loop.train_step

    def recording_step(run, batch, autocast, epoch_steps):
        indices = ",".join(map(str, batch.index.tolist()))
        steps.append([indices, _sha(batch.image.numpy().tobytes())])
        return real_step(run, batch, autocast, epoch_steps)

    monkeypatch.setattr(loop, "train_step", recording_step)
    with default_dtype(dtype):
        result = loop.train(config, out, RunOptions(workers=0, quiet=True))
    monkeypatch.undo()
    return {
        "init": _init(config),
        "crops": _crops_digest(config),
        "steps": steps,
        "weights": _fingerprint(result.method.state_dict()),
    }


def weight_mismatches(got: dict, recorded: dict, rtol: float = WEIGHTS_RTOL) -> list[str]:
    """Fingerprint values further from the recorded ones than rtol x the tensor's scale."""
    if sorted(got) != sorted(recorded):
        return [f"tensors differ: {sorted(set(got) ^ set(recorded))}"]
    bad = []
    for name, want in recorded.items():
        sumsq = max(1.0, abs(want[1]))  # its root is the tensor's norm (at least 1)
        for i, (a, b) in enumerate(zip(got[name], want, strict=True)):
            unit = sumsq if i == 1 else sumsq**0.5  # the sum of squares has squared units
            if abs(a - b) > rtol * unit:
                bad.append(f"{name}[{i}]: {a!r} vs {b!r}")
    return bad


@pytest.fixture(scope="module")
def golden_run(golden_shards, tmp_path_factory) -> dict:
    # benchmarks/golden_spread.py sets these to compare the run across CPU kernels.
    dtype = getattr(torch, os.environ.get("SSLX_GOLDEN_DTYPE", "float64"))
    out = tmp_path_factory.mktemp("run") / "r"
    with pytest.MonkeyPatch.context() as mp:
        got = run_golden(golden_config(golden_shards), out, mp, dtype)
    if os.environ.get("SSLX_GOLDEN_DUMP"):
        Path(os.environ["SSLX_GOLDEN_DUMP"]).write_text(json.dumps(got))
    if UPDATE:
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    return got


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(GOLDEN.read_text())


def test_the_init_and_the_crops_are_exactly_the_recorded_ones(golden_run, recorded):
    assert golden_run["crops"] == recorded["crops"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert golden_run["init"]["digest"] == recorded["init"]["digest"]
    else:  # another normal kernel: the same values up to float32 rounding
        got, want = golden_run["init"]["fingerprint"], recorded["init"]["fingerprint"]
        assert not weight_mismatches(got, want, rtol=1e-4)


def test_every_step_sees_exactly_the_recorded_samples_and_pixels(golden_run, recorded):
    assert len(golden_run["steps"]) == len(recorded["steps"]) == 18
    for step, (got, want) in enumerate(zip(golden_run["steps"], recorded["steps"], strict=True)):
        assert got == want, f"step {step}"


def test_short_rotnet_run_gives_the_recorded_weights(golden_run, recorded):
    assert not weight_mismatches(golden_run["weights"], recorded["weights"])


CHANGES = {
    "learning rate x1.01": lambda c: replace(c, optim=replace(c.optim, lr=0.0505)),
    "another crop": lambda c: replace(c, crop=CropConfig(crop_scale_min=0.1)),
    "another order": lambda c: replace(c, shuffle_buffer=33),
}


@pytest.mark.parametrize(
    "change",
    [
        "learning rate x1.01",
        # Each is a full float64 run (~10 s): with the slow tests, their inputs differ anyway.
        pytest.param("another crop", marks=pytest.mark.slow),
        pytest.param("another order", marks=pytest.mark.slow),
    ],
)
def test_a_real_change_is_caught(change, golden_shards, recorded, tmp_path, monkeypatch):
    config = CHANGES[change](golden_config(golden_shards))
    got = run_golden(config, tmp_path / "run", monkeypatch)
    inputs_changed = got["crops"] != recorded["crops"] or got["steps"] != recorded["steps"]
    assert got["init"] == recorded["init"]
    weights = weight_mismatches(got["weights"], recorded["weights"])
    if change == "learning rate x1.01":
        assert not inputs_changed  # the same data: only the tolerance can catch it
    assert weights, f"{change} left the weights within the tolerance"
    assert inputs_changed or change.startswith("learning rate")
