"""Stage 1: expand source photos into augmented patches stored as WebDataset shards.

The pieces, in the order data flows through them:

- `config`: what to generate (`AugmentConfig`, `GenerateConfig`, the ablation presets).
- `sampling`: augmentation parameters as a pure function of (seed, sample index).
- `sources`: loading and normalising source photos, and their image pyramids.
- `render`: applying sampled parameters to a source (one affine warp + one colour matrix).
- `shards`: the shard plan, atomic shard writing and the manifest (the contract with train).
- `pipeline`: the orchestration behind `sslx generate` (workers, parts, resume, progress).
"""

from sslx.datagen.config import PRESETS, AugmentConfig, GenerateConfig
from sslx.datagen.pipeline import generate
from sslx.datagen.render import render_patch
from sslx.datagen.sampling import PatchParams, sample_params
from sslx.datagen.shards import read_manifest

__all__ = [
    "PRESETS",
    "AugmentConfig",
    "GenerateConfig",
    "PatchParams",
    "generate",
    "read_manifest",
    "render_patch",
    "sample_params",
]
