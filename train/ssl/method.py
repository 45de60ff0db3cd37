"""`MultiViewMethod`: what SimCLR, BYOL, SimSiam and DINO share as plug-ins.

- the views: `view_images(batch)` applies each view's photometric draws on the device
  (`augment.photometric`); the crops were made by the loader (`Method.views`);
- the optimiser's groups: biases and BatchNorm without weight decay (and, for LARS,
  without trust ratio), as SimCLR, BYOL and DINO train;
- global BatchNorm under torchrun (`global_bn`), so N ranks compute what one does;
- the encoder: the backbone's pooled conv features (`Backbone.trunk`), which the heads
  project; AlexNet's fc6/fc7 are not used (docs/modern.md, "The encoder");
- the collapse measures (`collapse`): logged every step, averaged per epoch into the
  epoch's record, and one warning the first time an epoch's embedding has collapsed.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.distributed as dist
from tqdm import tqdm

from sslx.errors import InputError
from sslx.train import distributed
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.methods.base import EpochContext, Method
from sslx.train.ssl.augment import photometric
from sslx.train.ssl.collapse import COLLAPSED_STD, collapse_measures, collapsed
from sslx.train.ssl.global_bn import global_batchnorm


class MultiViewMethod(Method):
    def __init__(self, backbone: Backbone, options: object = None) -> None:
        super().__init__(backbone, options)
        # The encoder is the conv trunk with its pooling, as in the papers (ResNet's average
        # pool); its projection head replaces AlexNet's fc6/fc7, which stay untrained.
        for layer in backbone.classifier_layers():
            layer.requires_grad_(False)
        # This rank's sums of the epoch's collapse measures and their count (a resume
        # restores them). Not a buffer: DDP would overwrite every rank's with rank 0's.
        self.collapse_sums = torch.zeros(3)
        self.collapse_warned = False

    def distribute(self) -> None:
        """Call at the end of a subclass's __init__: global BatchNorm under torchrun."""
        if dist.is_initialized() and dist.get_world_size() > 1:
            global_batchnorm(self)

    def view_images(self, batch: Batch) -> list[torch.Tensor]:
        """Every view of the batch, augmented: float32 (b, 3, S_v, S_v) in [0, 1]."""
        if not batch.views:
            raise RuntimeError(f"{self.name} needs the loader's views (Method.views)")
        return [photometric(v.image, v.params) for v in batch.views]

    def parameter_groups(self) -> list[dict]:
        decay, no_decay = [], []
        for p in self.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        return [{"params": decay}, {"params": no_decay, "no_decay": True}]

    def measure(self, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        """The collapse measures of this step's embedding, added to the epoch's sums."""
        measures = collapse_measures(embedding)
        if self.collapse_sums.device != embedding.device:
            self.collapse_sums = self.collapse_sums.to(embedding.device)
        with torch.no_grad():
            step = torch.stack([measures["embedding_std"], measures["embedding_rank"]])
            self.collapse_sums += torch.cat([step, step.new_ones(1)]).to(self.collapse_sums)
        return measures

    def on_epoch_start(self, ctx: EpochContext) -> None:
        if ctx.start_step == 0:
            self.collapse_sums.zero_()

    def on_epoch_end(self, ctx: EpochContext) -> None:
        sums = distributed.all_reduce_sum(self.collapse_sums.clone().double()).tolist()
        if sums[2] == 0:
            return
        std, rank = sums[0] / sums[2], sums[1] / sums[2]
        ctx.record.update(embedding_std=std, embedding_rank=rank)
        if collapsed(std) and not self.collapse_warned:
            self.collapse_warned = True
            if ctx.dist.is_main:
                tqdm.write(
                    f"sslx: warning: the embedding collapsed in epoch {ctx.epoch + 1}: its "
                    f"spread (std x sqrt(d)) is {std:.4f} < {COLLAPSED_STD}, every input maps "
                    "to about one point (docs/modern.md, Collapse)",
                    file=sys.stderr,
                )

    def run_state(self) -> dict:
        return {
            "collapse_sums": self.collapse_sums.tolist(),
            "collapse_warned": self.collapse_warned,
        }

    def load_run_state(self, state: dict) -> None:
        sums = state.get("collapse_sums", [0.0, 0.0, 0.0])
        plain = isinstance(sums, list) and len(sums) == 3
        if not plain or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in sums):
            raise InputError(
                "the checkpoint's method_state.collapse_sums is damaged (3 numbers expected); "
                "resume from a good checkpoint or start the run again"
            )
        self.collapse_sums = torch.tensor(sums, dtype=torch.float32)
        self.collapse_warned = bool(state.get("collapse_warned", False))
