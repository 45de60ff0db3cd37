"""BYOL: the online network (backbone, projector, predictor) predicts the target network's
projection of the other view; the target is an EMA of the online backbone and projector."""

from __future__ import annotations

import torch
from torch import nn

from sslx.common.sampling import CropConfig
from sslx.common.views import ViewSpec
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.methods.base import StepInfo, StepOutput
from sslx.train.methods.byol.spec import SPEC
from sslx.train.ssl.heads import cosine_momentum, ema_update, make_target, mlp
from sslx.train.ssl.losses import normalised_mse
from sslx.train.ssl.method import MultiViewMethod


class BYOL(MultiViewMethod):
    spec = SPEC

    def __init__(self, backbone: Backbone, options: object = None) -> None:
        super().__init__(backbone, options)
        o, width = self.options, backbone.trunk_dim
        hidden = o.hidden_dim or width
        self.projector = mlp([width, hidden, o.projection_dim])
        self.predictor = mlp([o.projection_dim, hidden, o.projection_dim])
        # The target starts as a copy of the online backbone and projector.
        self.target = make_target(
            nn.ModuleDict({"backbone": backbone, "projector": self.projector})
        )
        self.distribute()

    def views(self, crop: CropConfig, size: int) -> tuple[ViewSpec, ...]:
        # Table 6: blur always on the first view, p = 0.1 on the second, which alone is
        # solarised with p = 0.2; jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8, grey p = 0.2.
        return (
            ViewSpec(size, crop, blur_prob=1.0),
            ViewSpec(size, crop, blur_prob=0.1, solarize_prob=0.2),
        )

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        x1, x2 = self.view_images(batch)
        h1, h2 = (
            self.backbone.trunk(x1),
            self.backbone.trunk(x2),
        )  # separate passes, as the reference
        p1, p2 = self.predictor(self.projector(h1)), self.predictor(self.projector(h2))
        with torch.no_grad():
            t1, t2 = (self.target["projector"](self.target["backbone"].trunk(x)) for x in (x1, x2))
        loss = normalised_mse(p1, t2) + normalised_mse(p2, t1)  # symmetrised (eq. 2)
        cosine = torch.nn.functional.cosine_similarity(p1.detach().float(), t2.float()).mean()
        return StepOutput(loss, {SPEC.pretext.metric: cosine, **self.measure(h1)})

    def after_optimizer_step(self, step: StepInfo) -> None:
        tau = cosine_momentum(self.options.teacher_momentum, step.step, step.total)
        online = nn.ModuleDict({"backbone": self.backbone, "projector": self.projector})
        ema_update(self.target, online, tau)
