"""Stage 2: pretrain AlexNet on the generate stage's shards with one training loop.

- `alexnet`: the paper's AlexNet (BatchNorm, optional Sobel, small-input geometry, taps).
- `crops`: training crop parameters as a pure function of (seed, epoch, index), applied
  with a reduced-size JPEG decode.
- `data`: the shard reader (epoch plan, node and worker split, shuffle buffer, batches).
- `methods`: the method plug-ins (RotNet, ...) and their registry.
- `losses`: losses and pretext-task constructions as pure functions.
- `loop`: the one training loop (DDP, AMP, checkpoints, resume, logging).
- `checkpoint`: the checkpoint format, the contract with `sslx probe`.
"""

from sslx.train.alexnet import CONV_LAYERS, AlexNet, ModelConfig
from sslx.train.checkpoint import load_backbone, load_checkpoint

__all__ = ["CONV_LAYERS", "AlexNet", "ModelConfig", "load_backbone", "load_checkpoint"]
