"""The supervised reference's spec: labels from an ImageFolder or CIFAR (docs/train.md).

Its data options are `sslx probe`'s (`LabelledConfig`, declared once), so with the same
`--val-fraction` and `--split-seed` the network never trains on the images it is
later probed on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.common.datasets import DEFAULT_VAL_FRACTION, VAL_FRACTION, LabelledConfig
from sslx.settings import declare
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext


@dataclass(frozen=True)
class SupervisedOptions(LabelledConfig):
    # Held out of --data-dir even for CIFAR pickles: their test split stays unseen.
    val_fraction: float = VAL_FRACTION.field(DEFAULT_VAL_FRACTION)
    patience: int = declare(
        0,
        help="Stop when the held-out top-1 (val_top1, measured after every epoch) has not "
        "improved for this many epochs; 0 runs all --epochs.",
        type=int,
        unit="EPOCHS",
        low=0,
    )

    def __post_init__(self) -> None:
        settings.check(self)


SPEC = MethodSpec(
    name="supervised",
    summary="labels from an ImageFolder or CIFAR (the paper's reference row)",
    # torchvision's reference recipe for AlexNet on ImageNet (references/classification):
    # SGD, lr 0.01, momentum 0.9, weight decay 1e-4, 90 epochs, lr ÷10 every 30 epochs.
    # Its batch is 8 GPUs x 32 = 256.
    defaults=OptimDefaults(
        batch_size=256,
        epochs=90,
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        lr_milestones=(30, 60),
        lr_gamma=0.1,
        reference="pytorch/vision references/classification (alexnet)",
    ),
    pretext=Pretext("accuracy", chance=0.1),  # CIFAR-10's chance, the ablation's data
    plugin="Supervised",
    docs="docs/train.md",
    options=SupervisedOptions,
    needs_shards=False,
)
