"""What decides a probe's result (`ProbeConfig`) and how it runs (`ProbeOptions`), each
field declared once; the optimiser settings are train's (`sslx.common.optim`), with the
paper's probe protocol as defaults (yukimasano/linear-probes). Torch-free, for `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sslx import settings
from sslx.common.optim import (
    BATCH_SIZE,
    EPOCHS,
    LR,
    LR_GAMMA,
    LR_MILESTONES,
    MOMENTUM,
    WEIGHT_DECAY,
)
from sslx.common.sampling import CROP_SCALE_MIN
from sslx.errors import InputError
from sslx.options import DEVICE, QUIET, SEED, WORKERS
from sslx.probe.references import REFERENCE
from sslx.settings import FREE, declare
from sslx.train.model import ModelConfig, check_layers, parse_layers, spell_layers


def _layers(text: str | tuple[str, ...]) -> tuple[str, ...]:
    return parse_layers(text, "--layers")  # none: every tap of each network


EVALS = ("linear", "knn", "cluster")


def _evals(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """'cluster,linear' -> ('linear', 'cluster'), in EVALS' order; an unknown name, or
    none, is an InputError (a stored value comes back as a list or tuple)."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in EVALS]
    if unknown or not names:
        what = f"unknown evaluation(s) {', '.join(map(str, unknown))}" if unknown else "none"
        raise InputError(f"--eval: {what}; give a comma-separated list of {', '.join(EVALS)}")
    return tuple(n for n in EVALS if n in names)


def _spell_evals(evals: tuple[str, ...]) -> str:
    return ",".join(evals)


@dataclass(frozen=True)
class ProbeConfig:
    """Everything that decides a probe's result (`epochs` may grow on a rerun, and `evals`,
    which evaluations run, may change)."""

    layers: tuple[str, ...] = declare(
        (),
        help="Comma-separated taps to probe (AlexNet: conv1..conv5; ResNet-18: stem, "
        "layer1..layer4); by default every tap of each network.",
        unit="LAYERS",
        parse=_layers,
        spell=spell_layers,
    )
    epochs: int = EPOCHS.field(36)
    batch_size: int = BATCH_SIZE.field(192)
    lr: float = LR.field(0.01)
    momentum: float = MOMENTUM.field(0.9)
    weight_decay: float = WEIGHT_DECAY.field(1e-5)
    lr_milestones: tuple[int, ...] = LR_MILESTONES.field((10, 20, 30))
    lr_gamma: float = LR_GAMMA.field(0.1)
    augment: bool = declare(
        True, help="RandomResizedCrop + flip in training (streaming path only).", type=bool
    )
    crop_scale_min: float = CROP_SCALE_MIN.field(0.08)
    crop_ratio: float = declare(
        0.875,
        help="Evaluation: resize the short side to size / ratio, then centre-crop.",
        type=float,
        unit="RATIO",
        low=0,
        high=1,
        open_low=True,
    )
    ten_crop: bool = declare(
        True,
        help="Evaluate on ten crops (corners, centre and their mirrors; logits averaged), "
        "as the paper's probe code does, or on one centre crop.",
        type=bool,
        flag="--ten-crop/--single-crop",
    )
    cache_features: bool = declare(
        False,
        help="Extract pooled features once, without augmentation, as float16, and train "
        "the probes on them: much faster on CPU.",
        type=bool,
        switch=False,
    )
    seed: int = SEED.field(0)
    # Which evaluations run may change on a rerun: each keeps its own state (docs/probe.md).
    evals: tuple[str, ...] = declare(
        ("linear",),
        help="Comma-separated evaluations of each layer: linear (the trained linear probes), "
        "knn (weighted k-nearest neighbours of the validation images among the training "
        "images, k = 20 and 200) and cluster (k-means of the validation images into as many "
        "clusters as classes, scored by NMI, AMI and ARI). knn and cluster read the feature "
        "cache, extracted for them whether or not --cache-features is given; without "
        "linear, no probe is trained.",
        flag="--eval",
        unit="NAMES",
        parse=_evals,
        spell=_spell_evals,
        resume=FREE,
    )

    def layers_of(self, model: ModelConfig) -> tuple[str, ...]:
        """The taps probed on a network: `layers`, all of them that network's, or every tap
        of it by default."""
        if not self.layers:
            return model.layers
        return check_layers(self.layers, model.arch, "--layers")

    def __post_init__(self) -> None:
        settings.check(self)
        if self.batch_size < 2:  # the probes' BatchNorm needs two samples
            raise InputError(f"--batch-size must be at least 2 (got {self.batch_size})")
        if self.cache_features and self.augment:
            # The cache is extracted once without augmentation: record what is used.
            object.__setattr__(self, "augment", False)


@dataclass(frozen=True)
class ProbeOptions:
    """How a probe runs; none of these change its result."""

    workers: int | None = WORKERS.field(None)  # None: 1 on CPU, every core but one on a GPU
    device: str = DEVICE.field("auto")
    cache_dir: Path | None = declare(
        None,
        help="[--cache-features] keep the cache in memory-mapped files here (reused by a "
        "rerun) instead of in memory.",
        type=Path,
        unit="DIR",
        resume=FREE,
    )
    quiet: bool = QUIET.field(False)
    # Published rows beside ours: the reports only, never a probe's state (docs/probe.md).
    references: tuple[str, ...] = REFERENCE.field(())

    def __post_init__(self) -> None:
        settings.check(self)

    @property
    def progress(self) -> bool:
        return not self.quiet
