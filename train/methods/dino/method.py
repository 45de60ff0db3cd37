"""DINO: a student (backbone + DINO head) matches the outputs of a teacher, an EMA of the
student, across 2 global and several local views; the teacher's outputs are centred (an
EMA of their mean over the global batch) and sharpened by a low temperature."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from sslx.common.sampling import CropConfig
from sslx.common.views import ViewSpec
from sslx.train import distributed
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.methods.base import EpochContext, StepInfo, StepOutput
from sslx.train.methods.dino.spec import SPEC
from sslx.train.optimizers import cosine_warmup
from sslx.train.ssl.heads import DINOHead, cosine_momentum, ema_update, make_target
from sslx.train.ssl.losses import dino_loss, updated_centre
from sslx.train.ssl.method import MultiViewMethod

LOCAL_SIZE = 96 / 224  # the local views' side, as a fraction of the global one


class DINO(MultiViewMethod):
    spec = SPEC

    def __init__(self, backbone: Backbone, options: object = None) -> None:
        super().__init__(backbone, options)
        o = self.options
        self.head = DINOHead(backbone.trunk_dim, o.out_dim, batchnorm=o.head_batchnorm)
        self.teacher = make_target(nn.ModuleDict({"backbone": backbone, "head": self.head}))
        self.register_buffer("centre", torch.zeros(1, self.options.out_dim))
        self.epoch = 0
        self.distribute()

    def views(self, crop: CropConfig, size: int) -> tuple[ViewSpec, ...]:
        # DataAugmentationDINO: blur always on the first global view, p = 0.1 and
        # solarisation p = 0.2 on the second, p = 0.5 on the locals, which are 96/224 of the
        # global size. AlexNet's flattened pool5 is as wide as its input makes it, so its
        # local views are rendered at the global size (docs/modern.md).
        o = self.options
        local_size = round(size * LOCAL_SIZE) if self.backbone.any_input_size else size
        local_crop = CropConfig(
            o.local_crop_scale_min, o.local_crop_scale_max, crop.aspect_ratio_min, crop.flip_prob
        )
        return (
            ViewSpec(size, crop, blur_prob=1.0),
            ViewSpec(size, crop, blur_prob=0.1, solarize_prob=0.2),
            *[ViewSpec(local_size, local_crop, blur_prob=0.5)] * o.local_crops,
        )

    def teacher_temperature(self, epoch: int) -> float:
        """Linear from the warm-up value to the final one over the warm-up epochs."""
        o = self.options
        warm = o.warmup_teacher_temperature_epochs
        if epoch >= warm:
            return o.teacher_temperature
        t = epoch / max(warm - 1, 1)
        return (
            o.warmup_teacher_temperature
            + (o.teacher_temperature - o.warmup_teacher_temperature) * t
        )

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        views = self.view_images(batch)
        n_global = 2
        # One pass per run of views of one size (the reference's MultiCropWrapper).
        runs = itertools.groupby(views, key=lambda v: v.shape[-1])
        h = torch.cat([self.backbone.trunk(torch.cat(list(run))) for _, run in runs])
        student = self.head(h).chunk(len(views))
        with torch.no_grad():
            t = self.teacher["head"](self.teacher["backbone"].trunk(torch.cat(views[:n_global])))
        teacher = t.chunk(n_global)
        o = self.options
        temperature = self.teacher_temperature(self.epoch)
        loss = dino_loss(
            list(student), list(teacher), self.centre, o.student_temperature, temperature
        )
        metrics = {
            SPEC.pretext.metric: _agreement(student, teacher),
            "teacher_entropy": _entropy(teacher[0], self.centre, temperature),
            **self.measure(h[: len(views[0])]),
        }
        with torch.no_grad():  # the centre of the next step: this global batch's mean
            t = t.float()
            total = distributed.all_reduce_sum(torch.cat([t.sum(0), t.new_full((1,), len(t))]))
            self.centre.copy_(
                updated_centre(self.centre, total[:-1], int(total[-1]), o.centre_momentum)
            )
        return StepOutput(loss, metrics)

    def on_epoch_start(self, ctx: EpochContext) -> None:
        super().on_epoch_start(ctx)
        self.epoch = ctx.epoch

    def before_optimizer_step(self, step: StepInfo) -> None:
        o = self.options
        if o.clip_grad > 0:  # utils.clip_gradients: each parameter's own norm
            for p in self.parameters():
                if p.grad is not None:
                    norm = p.grad.detach().norm()
                    p.grad.mul_(torch.clamp(o.clip_grad / (norm + 1e-6), max=1.0))
        if step.epoch < o.freeze_last_layer:
            self.head.last.weight.grad = None
        decay = cosine_warmup(
            step.step, step.total, 0, step.optimizer.defaults["weight_decay"], o.weight_decay_end
        )
        for group in step.optimizer.param_groups:
            if not group.get("no_decay"):
                group["weight_decay"] = decay

    def after_optimizer_step(self, step: StepInfo) -> None:
        m = cosine_momentum(self.options.teacher_momentum, step.step, step.total)
        ema_update(self.teacher, nn.ModuleDict({"backbone": self.backbone, "head": self.head}), m)


@torch.no_grad()
def _agreement(
    student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """How often the student's top output on one global view is the teacher's on the other."""
    a = (student[0].argmax(1) == teacher[1].argmax(1)).float().mean()
    b = (student[1].argmax(1) == teacher[0].argmax(1)).float().mean()
    return (a + b) / 2


@torch.no_grad()
def _entropy(teacher: torch.Tensor, centre: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean entropy of the teacher's distribution: near log(out_dim) when it is uniform
    (one collapse), near 0 when one output wins for every input (the other)."""
    p = F.softmax((teacher.float() - centre) / temperature, dim=1)
    return -(p * torch.log(p.clamp_min(1e-12))).sum(1).mean()
