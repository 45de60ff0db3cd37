"""The optimiser block: batch, epochs, the optimiser and its settings, and the schedule of
the learning rate (step decay per epoch, or a linear warm-up then cosine decay per step).

Declared once and used by `sslx train` (`OptimConfig`, whose defaults are each method's,
from its paper) and `sslx probe` (`ProbeConfig`, the paper's probe protocol). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.errors import InputError
from sslx.settings import FREE, Setting


def parse_milestones(text: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """`--lr-milestones 15,30,45` (or a stored list) -> (15, 30, 45); epochs are >= 0."""
    parts = text if isinstance(text, (tuple, list)) else str(text).split(",")
    try:
        epochs = tuple(_epoch(x) for x in parts if str(x).strip())
    except (TypeError, ValueError):
        raise InputError(f"--lr-milestones must be comma-separated epochs (got {text!r})") from None
    if any(e < 0 for e in epochs):
        raise InputError(f"--lr-milestones must be epochs >= 0 (got {text!r})")
    return epochs


def _epoch(value: object) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def spell_epochs(epochs: tuple[int, ...]) -> str:
    return ",".join(str(e) for e in epochs)


BATCH_SIZE = Setting(
    "Images per step: the global batch, split evenly over ranks.", int, unit="IMAGES", low=1
)
EPOCHS = Setting("Epochs.", int, unit="N", low=1, resume=FREE)
LR = Setting("Learning rate.", float, low=0, open_low=True)
MOMENTUM = Setting("SGD momentum (Adam's beta1 for bigan).", float, low=0, high=1)
WEIGHT_DECAY = Setting("Weight decay.", float, low=0)
NESTEROV = Setting("Nesterov momentum.", bool)
LR_MILESTONES = Setting(
    "Epochs at which the LR is multiplied by --lr-gamma, e.g. 15,30,45.",
    str,
    unit="EPOCHS",
    parse=parse_milestones,
    spell=spell_epochs,
)
LR_GAMMA = Setting("LR decay factor at each milestone.", float, low=0, open_low=True)
OPTIMIZERS = ("sgd", "lars", "adamw", "adam")
OPTIMIZER = Setting(
    "Optimiser: sgd (with --momentum), lars (SGD with layer-wise trust ratios, for large "
    "batches), adamw or adam (beta1 = --momentum).",
    str,
    choices=OPTIMIZERS,
)
LR_SCHEDULES = ("step", "cosine")
LR_SCHEDULE = Setting(
    "LR schedule: step (x --lr-gamma at each of --lr-milestones) or cosine (linear warm-up "
    "over --warmup-epochs, then cosine decay to --final-lr, every step).",
    str,
    choices=LR_SCHEDULES,
)
WARMUP_EPOCHS = Setting(
    "Epochs of linear LR warm-up from 0 (cosine schedule); a fraction such as 0.25 warms up "
    "over that share of an epoch's steps.",
    float,
    unit="EPOCHS",
    low=0,
)
FINAL_LR = Setting("The LR at the last step (cosine schedule).", float, low=0)
LR_SCALINGS = ("none", "linear", "sqrt")
LR_SCALING = Setting(
    "linear: --lr is per 256 images and the run uses --lr x --batch-size / 256 (the linear "
    "scaling rule of SimCLR, BYOL, SimSiam and DINO); sqrt: --lr x sqrt(--batch-size / 256) "
    "(SimCLR's rule for small batches with LARS); none: --lr as given.",
    str,
    choices=LR_SCALINGS,
)


@dataclass(frozen=True)
class OptimConfig:
    """A training run's optimiser and schedule; `momentum` is SGD's, or Adam's beta1 for
    methods that use Adam."""

    batch_size: int = BATCH_SIZE.field()
    epochs: int = EPOCHS.field()
    lr: float = LR.field()
    momentum: float = MOMENTUM.field()
    weight_decay: float = WEIGHT_DECAY.field()
    nesterov: bool = NESTEROV.field()
    lr_milestones: tuple[int, ...] = LR_MILESTONES.field()
    lr_gamma: float = LR_GAMMA.field()
    # Added with the multi-view methods; a config.yaml without them ran as these defaults
    # (`TrainConfig.from_dict` fills them in from the method's defaults).
    optimizer: str = OPTIMIZER.field("sgd")
    lr_schedule: str = LR_SCHEDULE.field("step")
    warmup_epochs: float = WARMUP_EPOCHS.field(0)
    final_lr: float = FINAL_LR.field(0.0)
    lr_scaling: str = LR_SCALING.field("none")

    def __post_init__(self) -> None:
        settings.check(self)

    @property
    def base_lr(self) -> float:
        """The LR the run uses at its peak: --lr, scaled to the batch if --lr-scaling linear."""
        if self.lr_scaling == "linear":
            return self.lr * self.batch_size / 256
        if self.lr_scaling == "sqrt":
            return self.lr * (self.batch_size / 256) ** 0.5
        return self.lr
