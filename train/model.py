"""The network's geometry and its settings, torch-free: `ModelConfig` is what every
checkpoint stores to rebuild the backbone (`sslx.train.backbone.build_backbone`: the
paper's AlexNet, `sslx.train.alexnet`, or torchvision's ResNet-18, `sslx.train.resnet`),
and what `--arch`, `--size`, `--sobel`, `--classifier-width` and `--conv1-stride` set, in
`sslx train` and for `sslx probe --random-init`.

Each architecture has its probe taps (`LAYERS`): AlexNet's conv1..conv5, ResNet-18's stem
and its four stages. ResNet-18 below 128 px takes the small-input stem of SimCLR's
CIFAR-10 ResNet (a 3x3 stride-1 conv, no max-pool); from 128 px on, torchvision's 7x7
stride-2 conv and max-pool.

Small inputs: at 224 px conv1 has stride 4 and the maps are 55/27/13/13/13 -> 6 after
pool5. The same stride at 64 px would leave a 1x1 map after pool5, and at 32 px no map
at all, so `conv1_stride` 0 picks 4 for inputs >= 128 px, 2 for >= 64 px and 1 below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from sslx import settings
from sslx.errors import InputError
from sslx.settings import Setting

CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
RESNET_LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4")
LAYERS = {"alexnet": CONV_LAYERS, "resnet18": RESNET_LAYERS}
ALL_LAYERS = CONV_LAYERS + RESNET_LAYERS
ARCHS = tuple(LAYERS)
_RESNET_CHANNELS = (64, 64, 128, 256, 512)
SMALL_STEM_BELOW = 128  # ResNet-18: the small-input stem below this input size
_CHANNELS = (96, 256, 384, 384, 256)
_KERNELS = (11, 5, 3, 3, 3)
_POOLED = ("conv1", "conv2", "conv5")  # a 3x3/2 max-pool follows these
# Input sizes a run may use: 1024 px AlexNet maps already need ~1 GB per image batch of 8;
# larger sizes are typos that would try to allocate terabytes.
MAX_INPUT_SIZE = 1024


def parse_layers(text: str | tuple[str, ...], flag: str, at_least_one: bool = False) -> tuple:
    """'conv3,conv1' -> ('conv1', 'conv3'), in network order; unknown names, or none where
    one is needed, are an InputError that names the flag. Names of either architecture
    are accepted; `check_layers` holds them to one network's."""
    names = text if isinstance(text, tuple) else [n.strip() for n in text.split(",")]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in ALL_LAYERS]
    if unknown or (at_least_one and not names):
        raise InputError(
            f"{flag}: unknown layer(s) {', '.join(unknown) or repr(text)}; the layers are "
            + "; ".join(f"{a}: {', '.join(names)}" for a, names in LAYERS.items())
        )
    return tuple(n for n in ALL_LAYERS if n in names)


def check_layers(layers: tuple[str, ...], arch: str, flag: str) -> tuple[str, ...]:
    """`layers` if all are `arch`'s taps, else an InputError that names them."""
    foreign = [n for n in layers if n not in LAYERS[arch]]
    if foreign:
        raise InputError(
            f"{flag}: {arch} has no layer {', '.join(foreign)}; its layers are "
            f"{', '.join(LAYERS[arch])}"
        )
    return layers


def spell_layers(layers: tuple[str, ...]) -> str:
    return ",".join(layers)


def default_conv1_stride(input_size: int) -> int:
    return 4 if input_size >= 128 else 2 if input_size >= 64 else 1


INPUT_SIZE = Setting(
    "Model input size in pixels (224, 64, 32...).",
    int,
    flag="--size",
    unit="PIXELS",
    low=1,
    high=MAX_INPUT_SIZE,
)
SOBEL = Setting("Frozen grey + Sobel front end (DeepCluster's).", bool)
CLASSIFIER_WIDTH = Setting(
    "AlexNet: width of fc6/fc7; narrower is much faster on CPU.", int, unit="WIDTH", low=1
)
CONV1_STRIDE = Setting(
    "AlexNet: conv1 stride; 0 picks 4 (>= 128 px), 2 (>= 64 px) or 1.", int, low=0, high=11
)
ARCH = Setting(
    "Backbone: alexnet (the paper's, probed at conv1-conv5) or resnet18 (torchvision's, "
    "with a small-input stem below 128 px; probed after its stem and each stage).",
    str,
    choices=ARCHS,
)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    arch: str = ARCH.field("alexnet")
    input_size: int = INPUT_SIZE.field(224)
    sobel: bool = SOBEL.field(False)
    classifier_width: int = CLASSIFIER_WIDTH.field(4096)
    conv1_stride: int = CONV1_STRIDE.field(0)  # 0: default_conv1_stride(input_size)

    def __post_init__(self) -> None:
        settings.check(self)

    @property
    def layers(self) -> tuple[str, ...]:
        """The probe taps of this architecture, in network order."""
        return LAYERS[self.arch]

    def resolved(self) -> ModelConfig:
        """The automatic conv1 stride made explicit; a geometry without a pool5 map is refused."""
        if self.arch != "alexnet":
            return self
        stride = self.conv1_stride or default_conv1_stride(self.input_size)
        config = replace(self, conv1_stride=stride)
        if min(config.spatial_sizes().values()) < 1:
            raise InputError(
                f"input size {self.input_size} with conv1 stride {stride} leaves no feature "
                "map after pool5; use a larger --size or a smaller --conv1-stride"
            )
        return config

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown model fields {sorted(unknown)} (newer sslx?)")
        return cls(**data)

    @property
    def conv1_padding(self) -> int:
        return 2 if self.conv1_stride == 4 else _KERNELS[0] // 2

    def spatial_sizes(self) -> dict[str, int]:
        """Side of each conv map (after ReLU) and of the pool5 output."""
        stride = self.conv1_stride or default_conv1_stride(self.input_size)
        padding = 2 if stride == 4 else _KERNELS[0] // 2
        side = (self.input_size + 2 * padding - _KERNELS[0]) // stride + 1
        sizes = {"conv1": side}
        for name in CONV_LAYERS[1:]:
            if CONV_LAYERS[CONV_LAYERS.index(name) - 1] in _POOLED:
                side = _pool(side)
            sizes[name] = side  # convs 2-5 keep the side ("same" padding)
        sizes["pool5"] = _pool(side)
        return sizes

    def tap_shapes(self) -> dict[str, tuple[int, int, int]]:
        """(channels, side, side) of each probe tap."""
        if self.arch == "resnet18":
            side = self.input_size
            if side >= SMALL_STEM_BELOW:  # 7x7/2 conv, then 3x3/2 max-pool (both padded)
                side = _halved(_halved(side))
            sides = [side, side]
            for _ in range(3):  # layers 2-4 halve (3x3/2 convs, padding 1)
                sides.append(_halved(sides[-1]))
            return {
                n: (c, s, s) for n, c, s in zip(RESNET_LAYERS, _RESNET_CHANNELS, sides, strict=True)
            }
        sizes = self.spatial_sizes()
        return {n: (c, sizes[n], sizes[n]) for n, c in zip(CONV_LAYERS, _CHANNELS, strict=True)}


def _halved(side: int) -> int:
    """The side after a padded stride-2 conv or pool (3x3 pad 1, 7x7 pad 3): ceil(side / 2)."""
    return (side + 1) // 2


def _pool(side: int) -> int:
    return (side - 3) // 2 + 1 if side >= 3 else 0
