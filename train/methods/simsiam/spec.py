"""SimSiam's spec: predict the other view's projection, with a stop-gradient
(docs/modern.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.settings import declare
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext
from sslx.train.ssl.options import PROJECTION_DIM


@dataclass(frozen=True)
class SimSiamOptions:
    # facebookresearch/simsiam main_simsiam.py: --dim 2048, --pred-dim 512; the README's
    # command adds --fix-pred-lr (the predictor keeps the base LR).
    projection_dim: int = PROJECTION_DIM.field(2048)
    prediction_dim: int = declare(
        512, help="Hidden width of SimSiam's predictor (its bottleneck).", type=int, low=1
    )
    fix_prediction_lr: bool = declare(
        True, help="Keep SimSiam's predictor at the base LR (not decayed).", type=bool
    )

    def __post_init__(self) -> None:
        settings.check(self)


SPEC = MethodSpec(
    name="simsiam",
    summary="predict the other view's projection, with a stop-gradient",
    # Chen & He 2021, section 4 and main_simsiam.py: batch 512, SGD momentum 0.9, lr 0.05
    # x batch / 256, weight decay 1e-4 on every parameter, cosine decay without warm-up,
    # 100 epochs; RandomResizedCrop scale (0.2, 1).
    defaults=OptimDefaults(
        batch_size=512,
        epochs=100,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-4,
        optimizer="sgd",
        lr_schedule="cosine",
        lr_scaling="linear",
        crop_scale_min=0.2,
        reference="facebookresearch/simsiam main_simsiam.py, README.md",
    ),
    pretext=Pretext("prediction_cosine"),
    plugin="SimSiam",
    docs="docs/modern.md",
    options=SimSiamOptions,
)
