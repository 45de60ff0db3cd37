"""Stage 2: pretrain AlexNet on the generate stage's shards with one training loop.

- `model`: the network's geometry and settings (torch-free); `alexnet`: the network.
- `data`: the shard stream (epoch plan, rank and worker split, shuffle buffer, batches).
- `batches`: the typed `Batch` a step takes, and the loaders of a method's own draws.
- `methods`: one folder per method (its spec, plug-in and helpers) and the registry.
- `evaluation`: the evaluation pass (eval mode, no gradient, batches on the device).
- `loop`: the one training loop (DDP, AMP, checkpoints, resume, logging); `state`: a
  run's state and its checkpoint save and restore; `stop`: clean stops on signals.
- `config`: `TrainConfig` and `RunOptions`, every field declared once; `resume`: the
  resume rules; `command`: `sslx train`, torch-free until it runs.
- `checkpoint`: the checkpoint format, the contract with `sslx probe`.
- `losses`, `metrics`, `precision`, `report`, `distributed`: the small parts.

The names below are imported on first use, so that `sslx train --help` (which imports
`sslx.train.command`, and with it this package) does not import torch.
"""

from __future__ import annotations

from sslx.common.lazy import lazy_exports

_EXPORTS = {
    "CONV_LAYERS": "sslx.train.model",
    "AlexNet": "sslx.train.alexnet",
    "ModelConfig": "sslx.train.model",
    "load_backbone": "sslx.train.checkpoint",
    "load_checkpoint": "sslx.train.checkpoint",
}

__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
