"""Stage 1: expand source photos into augmented patches stored as WebDataset shards.

The pieces, in the order data flows through them:

- `config`: what to generate (`AugmentConfig`, `GenerateConfig`, the ablation presets).
- `sampling`: augmentation parameters as a pure function of (seed, sample index).
- `sources`: loading and normalising source photos, and their image pyramids.
- `render`: applying sampled parameters to a source (one affine warp + one colour matrix).
- `shards`: the shard plan, atomic shard writing and the manifest (the contract with train).
- `pipeline`: the orchestration behind `sslx generate` (workers, parts, resume, progress).
"""

from __future__ import annotations

from sslx.common.lazy import lazy_exports

# Imported on first use: `sslx generate --help` reads `config` without numpy or OpenCV.
_EXPORTS = {
    "PRESETS": "sslx.datagen.config",
    "AugmentConfig": "sslx.datagen.config",
    "GenerateConfig": "sslx.datagen.config",
    "generate": "sslx.datagen.pipeline",
    "render_patch": "sslx.datagen.render",
    "PatchParams": "sslx.datagen.sampling",
    "sample_params": "sslx.datagen.sampling",
    "read_manifest": "sslx.datagen.shards",
}

__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
