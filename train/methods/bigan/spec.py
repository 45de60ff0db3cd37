"""BiGAN's spec: fool a joint discriminator of (x, E(x)) vs (G(z), z) pairs (docs/bigan.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.errors import InputError
from sslx.settings import declare
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext

START_SIDE = 4  # G starts from, and D ends at, a 4x4 map


def stride2_steps(size: int) -> int:
    """How many stride-2 layers lie between a 4x4 map and a size x size image."""
    if size < 2 * START_SIDE or size & (size - 1):
        raise InputError(f"--gan-size must be a power of two >= {2 * START_SIDE} (got {size})")
    return (size // START_SIDE).bit_length() - 1


@dataclass(frozen=True)
class BiGANOptions:
    latent_dim: int = declare(200, help="Dimensions of z (uniform on [-1, 1]).", type=int, low=1)
    gan_size: int = declare(
        64,
        help="Side of G's images and D's input, a power of two; E sees --size.",
        type=int,
        unit="PIXELS",
        low=2 * START_SIDE,
    )
    gan_width: int = declare(
        64, help="Base channel count of G and D (the reference's 64).", type=int, low=1
    )

    def __post_init__(self) -> None:
        settings.check(self)
        stride2_steps(self.gan_size)  # a power of two


SPEC = MethodSpec(
    name="bigan",
    summary="fool a joint discriminator of (x, E(x)) vs (G(z), z) pairs",
    # The reference's full-ImageNet run: Adam (beta1 0.5, the reference's --momentum),
    # lr 2e-4, L2 weight decay 2.5e-5 except on BatchNorm gains, batch 128, 50 epochs at
    # constant lr, then 50 epochs of exponential decay to 1% (per-epoch milestones).
    defaults=OptimDefaults(
        batch_size=128,
        epochs=100,
        lr=2e-4,
        momentum=0.5,
        weight_decay=2.5e-5,
        nesterov=False,
        lr_milestones=tuple(range(50, 100)),
        lr_gamma=0.01 ** (1 / 50),
        optimizer="adam",  # beta1 = momentum, beta2 = 0.999 (train_gan.py)
        input_size=64,  # the encoder sees 64 px crops (README ImageNet args: --crop_size 64)
        reference="jeffdonahue/bigan README.md (ImageNet, 1000 classes) and train_gan.py",
    ),
    pretext=Pretext("d_accuracy_real", chance=0.5),
    plugin="BiGAN",
    archs=("alexnet",),  # its encoder maps AlexNet's pool5 to z
    docs="docs/bigan.md",
    options=BiGANOptions,
)
