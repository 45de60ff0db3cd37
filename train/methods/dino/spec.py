"""DINO's spec: a student matches a momentum teacher's centred, sharpened outputs across
global and local views (docs/modern.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.errors import InputError
from sslx.settings import declare
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext
from sslx.train.ssl.options import TEACHER_MOMENTUM

_TEMPERATURE = {"type": float, "low": 0, "open_low": True}


@dataclass(frozen=True)
class DINOOptions:
    # facebookresearch/dino main_dino.py's defaults.
    out_dim: int = declare(65536, help="Width of DINO's output (its prototypes).", type=int, low=1)
    local_crops: int = declare(
        8, help="DINO's small local views per sample (0: two global views only).", type=int, low=0
    )
    local_crop_scale_min: float = declare(
        0.05,
        help="Smallest area fraction of DINO's local crops.",
        type=float,
        low=0,
        high=1,
        open_low=True,
    )
    local_crop_scale_max: float = declare(
        0.4,
        help="Largest area fraction of DINO's local crops.",
        type=float,
        low=0,
        high=1,
        open_low=True,
    )
    head_batchnorm: bool = declare(
        False,
        help="BatchNorm after each hidden layer of DINO's head (the reference's --use_bn_in_head).",
        type=bool,
    )
    teacher_temperature: float = declare(
        0.04, help="DINO's teacher temperature after its warm-up.", **_TEMPERATURE
    )
    warmup_teacher_temperature: float = declare(
        0.04, help="DINO's teacher temperature at epoch 0.", **_TEMPERATURE
    )
    warmup_teacher_temperature_epochs: int = declare(
        0,
        help="Epochs of linear warm-up of DINO's teacher temperature.",
        type=int,
        unit="EPOCHS",
        low=0,
    )
    student_temperature: float = declare(0.1, help="DINO's student temperature.", **_TEMPERATURE)
    centre_momentum: float = declare(
        0.9, help="EMA momentum of DINO's centre.", type=float, low=0, high=1
    )
    teacher_momentum: float = TEACHER_MOMENTUM.field(0.996)
    weight_decay_end: float = declare(
        0.4,
        help="DINO's weight decay at the last step (cosine from --weight-decay).",
        type=float,
        low=0,
    )
    clip_grad: float = declare(
        3.0, help="Clip each parameter's gradient norm to this (0: no clipping).", type=float, low=0
    )
    freeze_last_layer: int = declare(
        1,
        help="Epochs during which DINO's last layer is kept fixed.",
        type=int,
        unit="EPOCHS",
        low=0,
    )

    def __post_init__(self) -> None:
        settings.check(self)
        if self.local_crop_scale_min > self.local_crop_scale_max:
            raise InputError(
                f"--local-crop-scale-min {self.local_crop_scale_min} is above "
                f"--local-crop-scale-max {self.local_crop_scale_max}"
            )


SPEC = MethodSpec(
    name="dino",
    summary="match a momentum teacher's sharpened outputs across views",
    # main_dino.py: AdamW, lr 0.0005 x batch / 256, 10 warm-up epochs, cosine to 1e-6,
    # weight decay 0.04 -> 0.4 (cosine; none on biases and norms), 100 epochs; global
    # crops scale (0.4, 1). The paper's ViT-S/16 batch is 1024 (section 4).
    defaults=OptimDefaults(
        batch_size=1024,
        epochs=100,
        lr=0.0005,
        momentum=0.9,
        weight_decay=0.04,
        optimizer="adamw",
        lr_schedule="cosine",
        warmup_epochs=10,
        final_lr=1e-6,
        lr_scaling="linear",
        crop_scale_min=0.4,
        reference="facebookresearch/dino main_dino.py, utils.py; Caron et al. 2021",
    ),
    pretext=Pretext("view_agreement"),
    plugin="DINO",
    docs="docs/modern.md",
    options=DINOOptions,
)
