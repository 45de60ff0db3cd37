"""RotNet's spec: predict which of the 4 right-angle rotations was applied (docs/train.md)."""

from __future__ import annotations

from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext

SPEC = MethodSpec(
    name="rotnet",
    summary="predict which of the 4 right-angle rotations was applied",
    # The reference ImageNet AlexNet config: 192 images (x4 rotations) per batch, SGD
    # with Nesterov momentum, 50 epochs. Its 'lr': 0.1 is never used: LUT_lr
    # [(15, 0.01), (30, 0.001), (45, 0.0001), (50, 0.00001)] is applied before every
    # epoch, epoch 0 included (algorithms/Algorithm.py solve -> adjust_learning_rates),
    # so the run uses 0.01, divided by 10 at epochs 15, 30 and 45.
    defaults=OptimDefaults(
        batch_size=192,
        epochs=50,
        lr=0.01,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
        lr_milestones=(15, 30, 45),
        lr_gamma=0.1,
        reference="gidariss/FeatureLearningRotNet config/ImageNet_RotNet_AlexNet.py",
    ),
    pretext=Pretext("rotation_accuracy", chance=0.25),
    plugin="RotNet",
    docs="docs/train.md",
)
