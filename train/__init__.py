"""Stage 2: pretrain AlexNet on the generate stage's shards with one training loop.

- `alexnet`: the paper's AlexNet (BatchNorm, optional Sobel, small-input geometry, taps).
- `crops`: training crop parameters as a pure function of (seed, epoch, index), applied
  with a reduced-size JPEG decode.
- `data`: the shard reader (epoch plan, node and worker split, shuffle buffer, batches).
- `methods`: the method plug-ins (RotNet, ...) and their registry; `methods.specs` their
  torch-free names, defaults and options.
- `losses`: losses as pure functions.
- `loop`: the one training loop (DDP, AMP, checkpoints, resume, logging).
- `checkpoint`: the checkpoint format, the contract with `sslx probe`.
- `command`: `sslx train`, torch-free until it runs.

The names below are imported on first use, so that `sslx train --help` (which imports
`sslx.train.command`, and with it this package) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CONV_LAYERS": "sslx.train.alexnet",
    "AlexNet": "sslx.train.alexnet",
    "ModelConfig": "sslx.train.alexnet",
    "load_backbone": "sslx.train.checkpoint",
    "load_checkpoint": "sslx.train.checkpoint",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
