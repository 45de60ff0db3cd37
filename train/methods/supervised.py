"""Full supervision: the same AlexNet trained with labels, the paper's reference row.

It reads a labelled dataset (an ImageFolder tree or CIFAR-10/100) instead of shards,
through the probe's train/validation split (see `sslx.train.labelled`), and adds one
linear layer (fc8) from the fc7 embedding to the classes. With `--init CKPT --freeze
conv1,conv2` it is the paper's Table 4 protocol: a single-image conv1-conv2 kept fixed
while the layers above learn from labels.
"""

from __future__ import annotations

import torch
from torch import nn

from sslx.errors import InputError
from sslx.train.alexnet import AlexNet
from sslx.train.labelled import LabelledData, LabelledDraws
from sslx.train.losses import accuracy, cross_entropy
from sslx.train.methods.base import (
    EpochContext,
    Method,
    StepOutput,
    register,
)
from sslx.train.methods.specs import SUPERVISED


@register
class Supervised(Method):
    """The supervised plug-in; its name, defaults and options are `specs.SUPERVISED`."""

    spec = SUPERVISED

    def __init__(self, backbone: AlexNet, options: dict) -> None:
        super().__init__(backbone, options)
        o = self.method_options
        self.data = LabelledData(
            o["dataset"], o["data_dir"], o["val_dir"], o["val_fraction"], o["split_seed"]
        )
        self.head = nn.Linear(backbone.embed_dim, len(self.data.classes))
        nn.init.normal_(self.head.weight, 0.0, 0.01)
        nn.init.zeros_(self.head.bias)

    def make_data(self) -> LabelledData:
        return self.data

    def check_data(self, num_samples: int) -> None:
        if len(self.data.classes) < 2:
            raise InputError(f"{self.method_options['data_dir']} has fewer than 2 classes")

    def epoch_data(self, ctx: EpochContext) -> LabelledDraws:
        config = ctx.config
        return LabelledDraws(
            self.data,
            input_size=config.model.input_size,
            crop=config.crop,
            seed=config.seed,
            epoch=ctx.epoch,
        )

    def forward(self, images: torch.Tensor, batch: dict) -> StepOutput:
        logits = self.head(self.backbone(images))
        labels = batch["label"]
        loss = cross_entropy(logits, labels)
        return StepOutput(loss, {"accuracy": accuracy(logits, labels)})
