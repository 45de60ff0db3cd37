"""BYOL's spec: predict a slow-moving target network's projection of the other view
(docs/modern.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext
from sslx.train.ssl.options import HIDDEN_DIM, PROJECTION_DIM, TEACHER_MOMENTUM


@dataclass(frozen=True)
class BYOLOptions:
    # Grill et al. 2020, section 3.3: projector and predictor MLPs 4096 -> 256, target
    # decay 0.996 raised to 1 by a cosine.
    projection_dim: int = PROJECTION_DIM.field(256)
    hidden_dim: int = HIDDEN_DIM.field(4096)
    teacher_momentum: float = TEACHER_MOMENTUM.field(0.996)

    def __post_init__(self) -> None:
        settings.check(self)


SPEC = MethodSpec(
    name="byol",
    summary="predict a slow-moving target's projection of the other view",
    # Grill et al. 2020, section 3.3 and appendix C: batch 4096, LARS, lr 0.2 x batch /
    # 256, weight decay 1.5e-6 (biases and BatchNorm excluded from it and from LARS), 10
    # warm-up epochs then cosine decay to 0; 1000 epochs (300 in its ablations).
    defaults=OptimDefaults(
        batch_size=4096,
        epochs=1000,
        lr=0.2,
        momentum=0.9,
        weight_decay=1.5e-6,
        optimizer="lars",
        lr_schedule="cosine",
        warmup_epochs=10,
        lr_scaling="linear",
        reference="Grill et al. 2020 section 3.3, appendix B-C; deepmind/deepmind-research byol",
    ),
    pretext=Pretext("prediction_cosine"),
    plugin="BYOL",
    docs="docs/modern.md",
    options=BYOLOptions,
)
