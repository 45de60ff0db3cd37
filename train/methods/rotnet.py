"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): predict which of 4 rotations was applied."""

from __future__ import annotations

import torch
from torch import nn

from sslx.train.alexnet import AlexNet
from sslx.train.losses import accuracy, cross_entropy, rotate_batch
from sslx.train.methods.base import Method, OptimDefaults, StepOutput, register


@register
class RotNet(Method):
    name = "rotnet"
    # The reference ImageNet AlexNet config: 192 images (x4 rotations) per batch, SGD
    # with Nesterov momentum, lr 0.1 divided by 10 at epochs 15, 30 and 45, 50 epochs.
    defaults = OptimDefaults(
        batch_size=192,
        epochs=50,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
        lr_milestones=(15, 30, 45),
        lr_gamma=0.1,
        reference="gidariss/FeatureLearningRotNet config/ImageNet_RotNet_AlexNet.py",
    )

    def __init__(self, backbone: AlexNet, options: dict) -> None:
        super().__init__(backbone, options)
        self.head = nn.Linear(backbone.embed_dim, 4)
        nn.init.normal_(self.head.weight, 0.0, 0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor, batch: dict) -> StepOutput:
        rotated, labels = rotate_batch(images)
        logits = self.head(self.backbone(rotated))
        loss = cross_entropy(logits, labels)
        return StepOutput(loss, {"rotation_accuracy": accuracy(logits, labels)})
