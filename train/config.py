"""The resolved training config: what `config.yaml` in a run folder holds.

`TrainConfig` is everything that decides the result of a run. Settings that only
decide how fast or how verbosely it runs (workers, device, compile, memory format, log
and checkpoint intervals) live in `RunOptions` and may change between resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from sslx.atomic import write_text_atomic
from sslx.errors import InputError, first_line
from sslx.train.alexnet import ModelConfig
from sslx.train.crops import CropConfig
from sslx.train.precision import check_precision


@dataclass(frozen=True)
class OptimConfig:
    batch_size: int
    epochs: int
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    lr_milestones: tuple[int, ...]
    lr_gamma: float

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1:
            raise InputError("batch size and epochs must be >= 1")
        if self.lr <= 0:
            raise InputError(f"learning rate must be > 0 (got {self.lr})")


@dataclass(frozen=True)
class TrainConfig:
    shards: str
    method: str
    model: ModelConfig
    optim: OptimConfig
    crop: CropConfig = field(default_factory=CropConfig)
    method_options: dict = field(default_factory=dict)
    seed: int = 0
    shuffle_buffer: int = 5000
    max_bad_fraction: float = 0.001
    init: str | None = None  # checkpoint whose conv layers start this run (Table 4)
    freeze: tuple[str, ...] = ()  # conv layers kept fixed (weights and BN statistics)
    # Step arithmetic (train/precision.py); runs from before it was stored ran as "auto".
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_precision(self.precision)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["optim"]["lr_milestones"] = list(self.optim.lr_milestones)
        data["freeze"] = list(self.freeze)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        try:
            data["model"] = ModelConfig.from_dict(data["model"])
            optim = dict(data["optim"])
            optim["lr_milestones"] = tuple(optim["lr_milestones"])
            data["optim"] = OptimConfig(**optim)
            data["crop"] = CropConfig(**data["crop"])
            data["freeze"] = tuple(data.get("freeze", ()))
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(
                f"training config is incomplete or malformed: {first_line(e)}"
            ) from None

    def with_epochs(self, epochs: int) -> TrainConfig:
        return replace(self, optim=replace(self.optim, epochs=epochs))


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; none of these change what it computes (except `max_steps`)."""

    workers: int | None = None  # None: 1 on CPU, the cores per local GPU less one on CUDA
    device: str = "auto"
    compile: bool = False
    amp: bool = True  # within precision "auto": bf16 autocast on CUDA
    channels_last: bool | None = None  # None: on CUDA only
    log_every: int = 20
    checkpoint_every: int = 1000
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in all
    progress: bool = True
    dist_timeout_minutes: float = 120.0  # process-group timeout; covers DeepCluster's clustering


def write_config(path: Path, config: TrainConfig) -> None:
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def read_config(path: Path) -> TrainConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise InputError(f"{path} is unreadable: {first_line(e)}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a training config")
    return TrainConfig.from_dict(data)
