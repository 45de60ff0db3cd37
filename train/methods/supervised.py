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
    MethodOption,
    OptimDefaults,
    StepOutput,
    register,
)


@register
class Supervised(Method):
    """Full supervision: AlexNet + fc8 trained with labels on an ImageFolder or CIFAR."""

    name = "supervised"
    needs_shards = False
    # torchvision's reference recipe for AlexNet on ImageNet (references/classification):
    # SGD, lr 0.01, momentum 0.9, weight decay 1e-4, 90 epochs, lr ÷10 every 30 epochs.
    # Its batch is 8 GPUs x 32 = 256.
    defaults = OptimDefaults(
        batch_size=256,
        epochs=90,
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        lr_milestones=(30, 60),
        lr_gamma=0.1,
        reference="pytorch/vision references/classification (alexnet)",
    )
    options = {  # noqa: RUF012  (a ClassVar in the base class)
        "dataset": MethodOption("imagefolder", "imagefolder, cifar10 or cifar100.", str),
        "data_dir": MethodOption("", "The labelled training data (as for sslx probe).", str),
        "val_dir": MethodOption("", "A separate validation tree; none is held out then.", str),
        "val_fraction": MethodOption(
            0.1, "Fraction of each class held out (never trained on), as in sslx probe.", float
        ),
        "split_seed": MethodOption(0, "Seed of the held-out split (match sslx probe's).", int),
    }

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
