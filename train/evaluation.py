"""The evaluation pass, written once: a module in eval mode without gradients, fed a
map-style dataset of draws (`sslx.train.batches`) in order, batch by batch, on the
device. Supervised validation and DeepCluster's feature pass read their data through it;
BiGAN's pictures use `evaluating`.

Each rank passes its own stretch of the data (`batches.rank_share`) and the caller
combines the ranks' results (sums all-reduced, rows gathered).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from sslx.common.batching import in_order
from sslx.train.batches import Batch, epoch_loader

if TYPE_CHECKING:
    from sslx.train.methods.base import EpochContext


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode (BatchNorm's running statistics, no dropout), then as it was."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@torch.no_grad()
def evaluation_batches(
    module: nn.Module,
    dataset: torch.utils.data.Dataset,
    positions: Sequence[int],
    batch_size: int,
    ctx: EpochContext,
) -> Iterator[Batch]:
    """The draws at `positions`, in order, `batch_size` at a time, on `ctx.device` (images
    uint8 (b, 3, S, S)), while `module` is in eval mode and no gradient is recorded."""
    batches = in_order(positions, batch_size)
    loader = epoch_loader(dataset, batches, ctx.workers, ctx.device.type == "cuda")
    with evaluating(module):
        for batch in loader:
            yield batch.to(ctx.device)
