"""SimSiam: a projector and a predictor on one network; each view's prediction is pulled
towards the other view's projection, which gets no gradient (the stop-gradient)."""

from __future__ import annotations

import torch

from sslx.common.sampling import CropConfig
from sslx.common.views import ViewSpec
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.methods.base import StepOutput
from sslx.train.methods.simsiam.spec import SPEC
from sslx.train.ssl.heads import mlp
from sslx.train.ssl.losses import negative_cosine
from sslx.train.ssl.method import MultiViewMethod


class SimSiam(MultiViewMethod):
    spec = SPEC

    def __init__(self, backbone: Backbone, options: object = None) -> None:
        super().__init__(backbone, options)
        o, width, dim = self.options, backbone.trunk_dim, self.options.projection_dim
        # builder.py: 3 layers, BatchNorm on each, the last without affine; the predictor
        # dim -> pred_dim (BN, ReLU) -> dim.
        self.projector = mlp([width, dim, dim, dim], last_bn=True, last_affine=False, bias=False)
        self.predictor = mlp([dim, o.prediction_dim, dim], bias=False)
        self.distribute()

    def views(self, crop: CropConfig, size: int) -> tuple[ViewSpec, ...]:
        # main_simsiam.py: jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8, grey p = 0.2, blur p = 0.5.
        view = ViewSpec(size, crop, jitter=(0.4, 0.4, 0.4, 0.1), blur_prob=0.5)
        return (view, view)

    def parameter_groups(self) -> list[dict]:
        # Weight decay on every parameter; the predictor may keep the base LR.
        predictor = {id(p) for p in self.predictor.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in predictor]
        return [
            {"params": rest},
            {
                "params": list(self.predictor.parameters()),
                "fixed_lr": self.options.fix_prediction_lr,
            },
        ]

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        x1, x2 = self.view_images(batch)
        h1, h2 = self.backbone.trunk(x1), self.backbone.trunk(x2)
        z1, z2 = self.projector(h1), self.projector(h2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        loss = negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2
        return StepOutput(loss, {SPEC.pretext.metric: -loss.detach(), **self.measure(h1)})
