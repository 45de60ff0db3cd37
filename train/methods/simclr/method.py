"""SimCLR: two views of each sample, a projection MLP, and the NT-Xent loss with every
rank's projections as negatives (gathered with their gradients)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

from sslx.common.sampling import CropConfig
from sslx.common.views import ViewSpec
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.methods.base import StepOutput
from sslx.train.methods.simclr.spec import SPEC
from sslx.train.ssl.heads import mlp
from sslx.train.ssl.losses import nt_xent
from sslx.train.ssl.method import MultiViewMethod


class SimCLR(MultiViewMethod):
    spec = SPEC

    def __init__(self, backbone: Backbone, options: object = None) -> None:
        super().__init__(backbone, options)
        o, width = self.options, backbone.trunk_dim
        # Linear-BN-ReLU-Linear-BN: the projection head of the reference (its last layer
        # has BatchNorm and no bias).
        self.projector = mlp([width, o.hidden_dim or width, o.projection_dim], last_bn=True)
        self.distribute()

    def views(self, crop: CropConfig, size: int) -> tuple[ViewSpec, ...]:
        # Colour distortion of strength 1 (0.8, 0.8, 0.8, 0.2) and blur with p = 0.5 on
        # both views (data_util.py, ImageNet).
        view = ViewSpec(size, crop, jitter=(0.8, 0.8, 0.8, 0.2), blur_prob=0.5)
        return (view, view)

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        x1, x2 = self.view_images(batch)
        h = self.backbone.trunk(torch.cat([x1, x2]))  # one pass: BatchNorm sees both views
        z1, z2 = self.projector(h).chunk(2)
        keys, offset = (z1, z2), 0
        if dist.is_initialized() and dist.get_world_size() > 1:
            keys = (torch.cat(dist_fn.all_gather(z1)), torch.cat(dist_fn.all_gather(z2)))
            offset = dist.get_rank() * len(z1)
        loss = nt_xent((z1, z2), keys, offset, self.options.temperature)
        metrics = {SPEC.pretext.metric: _positive_top1(z1, z2), **self.measure(h[: len(x1)])}
        return StepOutput(loss, metrics)


@torch.no_grad()
def _positive_top1(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """How often a view's most similar other view (of this rank's 2b) is its partner."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = (z @ z.t()).fill_diagonal_(float("-inf"))
    b = len(z1)
    partner = torch.arange(2 * b, device=z.device).roll(b)
    return (sim.argmax(1) == partner).float().mean()
