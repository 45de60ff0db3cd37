"""Full supervision: the same AlexNet trained with labels, the paper's reference row.

It reads a labelled dataset (an ImageFolder tree or CIFAR-10/100) instead of shards,
through the probe's train/validation split (see `sslx.common.labelled`), and adds one
linear layer (fc8) from the fc7 embedding to the classes. With `--init CKPT --freeze
conv1,conv2` it is the paper's Table 4 protocol: a single-image conv1-conv2 kept fixed
while the layers above learn from labels.

After every epoch it measures top-1 and the loss on the held-out split (`val_top1`,
`val_loss` in the epoch's record): eval mode, no augmentation, one centre crop at the
input size, float32. Under torchrun each rank evaluates a contiguous stretch of the split
with rank 0's BatchNorm statistics (those its checkpoint saves) and the sums are
all-reduced, so every rank gets the same numbers on any rank count. With `--patience N`
the run ends, finished, once `val_top1` has not improved for N epochs in a row; it keeps
the last epoch's weights (at most N epochs past the best) and records the best epoch.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm import tqdm

from sslx.common.batching import rank_share
from sslx.common.datasets import eval_crop_ratio
from sslx.common.labelled import LabelledData, LabelledDraws, LabelledViews
from sslx.errors import InputError
from sslx.train import distributed
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch, rank_batch_size
from sslx.train.evaluation import evaluation_batches
from sslx.train.losses import accuracy, cross_entropy
from sslx.train.methods.base import EpochContext, Method, StepOutput
from sslx.train.methods.supervised.spec import SPEC, SupervisedOptions


@dataclass
class Patience:
    """The early-stopping count: the best `val_top1` so far, its epoch (1-based) and the
    epochs since it. Only a strict increase is an improvement, so a plateau counts."""

    patience: int  # 0: never stop
    best: float | None = None
    best_epoch: int = 0
    since_best: int = 0

    def update(self, epoch: int, top1: float) -> bool:
        """Count epoch `epoch`'s top-1; True when the run should stop after it."""
        if self.best is None or top1 > self.best:
            self.best, self.best_epoch, self.since_best = top1, epoch, 0
        else:
            self.since_best += 1
        return self.patience > 0 and self.since_best >= self.patience

    def state(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "patience"}


class Supervised(Method):
    """The supervised plug-in: a linear layer (fc8) on fc7 classifies the labels."""

    spec = SPEC
    options: SupervisedOptions

    def __init__(self, backbone: Backbone, options: SupervisedOptions | None = None) -> None:
        super().__init__(backbone, options)
        self.data = LabelledData(self.options)
        self.head = nn.Linear(backbone.embed_dim, len(self.data.classes))
        nn.init.normal_(self.head.weight, 0.0, 0.01)
        nn.init.zeros_(self.head.bias)
        self.patience = Patience(self.options.patience)

    def make_data(self) -> LabelledData:
        return self.data

    def check_data(self, num_samples: int) -> None:
        if len(self.data.classes) < 2:
            raise InputError(f"{self.options.data_dir} has fewer than 2 classes")

    def epoch_data(self, ctx: EpochContext) -> LabelledDraws:
        config = ctx.config
        return LabelledDraws(
            self.data,
            input_size=config.model.input_size,
            crop=config.crop,
            seed=config.seed,
            epoch=ctx.epoch,
        )

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        logits = self.head(self.backbone(images))
        loss = cross_entropy(logits, batch.label)
        return StepOutput(loss, {SPEC.pretext.metric: accuracy(logits, batch.label)})

    def run_state(self) -> dict:
        return {"patience": self.patience.state()}

    def load_run_state(self, state: dict) -> None:
        # A checkpoint from before --patience has none: the count starts afresh.
        self.patience = Patience(self.patience.patience, **state.get("patience", {}))

    def on_epoch_end(self, ctx: EpochContext) -> None:
        """Validate, log `val_top1`/`val_loss` and the best so far, apply --patience."""
        top1, loss = self.validate(ctx)
        epoch, p = ctx.epoch + 1, self.patience
        if p.update(epoch, top1):
            ctx.stop = "patience"
        ctx.record.update(
            val_top1=top1, val_loss=loss, best_val_top1=p.best, best_epoch=p.best_epoch
        )
        if ctx.verbose:
            line = (
                f"sslx: epoch {epoch}/{ctx.config.optim.epochs}: val_top1 {top1:.4f}, "
                f"val_loss {loss:.4f} (best {p.best:.4f} at epoch {p.best_epoch})"
            )
            if ctx.stop:
                line += f"; no improvement in {p.since_best} epoch(s): --patience stops the run"
            tqdm.write(line, file=sys.stderr)

    def validate(self, ctx: EpochContext) -> tuple[float, float]:
        """Top-1 and mean loss on the whole held-out split, the same on every rank."""
        for buffer in self.buffers():  # BatchNorm statistics: rank 0's, as DDP's next step
            distributed.broadcast(buffer)
        sums = self.validation_sums(ctx, ctx.dist.rank, ctx.dist.world_size)
        correct, loss, count = distributed.all_reduce_sum(sums).tolist()
        return correct / count, loss / count

    def validation_sums(self, ctx: EpochContext, rank: int, world_size: int) -> torch.Tensor:
        """[correct, summed loss, images] (float64) over rank `rank`'s contiguous stretch
        of the held-out split, one batch (this rank's share of --batch-size) at a time."""
        val = self.data.val
        ratio = eval_crop_ratio(self.options.dataset)
        views = LabelledViews(val, input_size=ctx.config.model.input_size, centre_ratio=ratio)
        size = rank_batch_size(ctx.config.optim.batch_size, world_size)
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)
        share = rank_share(len(val), rank, world_size)
        for batch in evaluation_batches(self, views, share, size, ctx):
            with torch.no_grad():
                logits = self.head(self.backbone(batch.image)).float()
                sums[0] += (logits.argmax(1) == batch.label).sum()
                sums[1] += cross_entropy(logits, batch.label).double() * len(batch)
                sums[2] += len(batch)
        return sums
