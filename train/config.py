"""The resolved training config (what `config.yaml` in a run folder holds) and the run's
execution options, each field declared once with its flag, help, bounds and resume rule.

`TrainConfig` is everything that decides the result of a run; `TrainConfig.for_method`
builds one with a method's paper defaults. Settings that only decide how fast or how
verbosely it runs (workers, device, compile, memory format, log and checkpoint
intervals) live in `RunOptions` and may change between resumes. Torch-free, so
`sslx train --help` is built from these declarations without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sslx import settings
from sslx.atomic import write_text_atomic
from sslx.common.datasets import DATASET, DATASETS
from sslx.common.optim import OptimConfig
from sslx.common.sampling import CropConfig
from sslx.errors import InputError, first_line
from sslx.options import DEVICE, QUIET, SEED, WORKERS
from sslx.settings import FREE, MOVABLE, Setting, declare
from sslx.train.methods import REGISTERED, SPECS
from sslx.train.model import ModelConfig, check_layers, parse_layers, spell_layers
from sslx.train.precision import PRECISIONS

SHARDS = Setting("Shard folder from sslx generate.", Path, unit="DIR", resume=MOVABLE, parse=str)
METHOD = Setting(
    "Pretraining method (required unless --resume); see Methods below.", str, choices=REGISTERED
)


# Optimiser settings added after runs were first stored (with the multi-view methods).
OPTIM_ADDED = ("optimizer", "lr_schedule", "warmup_epochs", "final_lr", "lr_scaling")


def _freeze(text: str | tuple[str, ...]) -> tuple[str, ...]:
    return parse_layers(text, "--freeze")


@dataclass(frozen=True)
class TrainConfig:
    shards: str = SHARDS.field()  # "" for a method that reads no shards
    method: str = METHOD.field()
    model: ModelConfig
    optim: OptimConfig
    crop: CropConfig = field(default_factory=CropConfig)
    method_options: Any = None  # the method's options dataclass (None: its defaults)
    seed: int = SEED.field(0)
    shuffle_buffer: int = declare(
        5000, help="Samples in each worker's shuffle buffer.", type=int, unit="SAMPLES", low=1
    )
    max_bad_fraction: float = declare(
        0.001,
        help="Fail if more than this fraction of an epoch's samples is unreadable.",
        type=float,
        unit="FRACTION",
        low=0,
        high=1,
    )
    init: str | None = declare(
        None,
        help="Checkpoint whose layers start this run: those in --freeze, or all its taps.",
        type=Path,
        unit="CHECKPOINT",
        parse=str,
    )
    freeze: tuple[str, ...] = declare(
        (),
        help="Comma-separated layers kept fixed, e.g. conv1,conv2 (the paper's Table 4).",
        unit="LAYERS",
        parse=_freeze,
        spell=spell_layers,
    )
    # Step arithmetic (train/precision.py); runs from before it was stored ran as "auto".
    precision: str = declare(
        "auto",
        help="Step arithmetic, kept in config.yaml: auto = bf16 autocast on CUDA, fp32 on "
        "CPU; fp32 everywhere; bf16 = bf16 autocast on CPU too (fast on CPUs with AVX-512 "
        "BF16 or AMX).",
        choices=PRECISIONS,
    )

    def __post_init__(self) -> None:
        settings.check(self)
        # Frozen: the automatic conv1 stride and the method's option defaults made explicit.
        object.__setattr__(self, "model", self.model.resolved())
        spec = SPECS[self.method]
        if not isinstance(self.method_options, spec.options):  # a stored dict, or None
            object.__setattr__(self, "method_options", spec.make_options(self.method_options))
        if self.model.arch not in spec.archs:
            archs, arch = ", ".join(spec.archs), self.model.arch
            raise InputError(f"--method {self.method} trains {archs}, not --arch {arch}")
        check_layers(self.freeze, self.model.arch, "--freeze")
        if self.shards and not spec.needs_shards:
            raise InputError(f"--method {self.method} reads --data-dir, not --shards")

    @classmethod
    def for_method(cls, method: str, **values: Any) -> TrainConfig:
        """A config with `method`'s paper defaults, changed by `values` given by setting key
        (e.g. `epochs=2`, `input_size=32`, `clusters=50`)."""
        if method not in SPECS:
            raise InputError(f"unknown method {method!r} (known: {', '.join(SPECS)})")
        spec = SPECS[method]
        known = settings.declared(cls).keys() | {"method_options"}
        options = settings.declared(spec.options)
        unknown = sorted(set(values) - known - options.keys())
        if unknown:
            raise TypeError(f"not settings of {method}: {', '.join(unknown)}")
        chosen = {k: values.pop(k) for k in list(values) if k in options}
        values.setdefault("method_options", settings.build(spec.options, chosen))
        fallback = {"shards": "", **spec.defaults.values()}
        return settings.build(cls, {**values, "method": method}, fallback)

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
            defaults = SPECS[data["method"]].defaults.values()
            for key in OPTIM_ADDED:  # a run from before they existed ran as its method's
                optim.setdefault(key, defaults[key])
            data["optim"] = OptimConfig(**optim)
            data["crop"] = CropConfig(**data["crop"])
            data["freeze"] = tuple(data.get("freeze", ()))
            names = cls.__dataclass_fields__
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

    workers: int | None = WORKERS.field(None)  # None: 1 on CPU, cores per local GPU less one
    device: str = DEVICE.field("auto")
    compile: bool = declare(
        False, help="torch.compile the model.", type=bool, switch=False, resume=FREE
    )
    amp: bool = declare(
        True,
        help="Old switch within --precision auto: --no-amp keeps CUDA in fp32 (a new run "
        "records it as --precision fp32).",
        type=bool,
        resume=FREE,
    )
    channels_last: bool | None = declare(
        None,
        help="channels-last memory format; on CPU it helped BiGAN and bf16 runs, not fp32 "
        "RotNet (benchmarks/train_cpu.py).",
        type=bool,
        resume=FREE,
    )
    decode: str = declare(
        "cpu",
        help="Where training JPEGs are decoded: cpu = in the loader workers; gpu = on the "
        "training device with nvJPEG, from the same crop boxes (shard-stream methods; pixels "
        "agree within JPEG decoder tolerance; on a CPU device, in the main process).",
        choices=("cpu", "gpu"),
        resume=FREE,
    )
    log_every: int = declare(
        20, help="Steps between metrics records.", type=int, unit="STEPS", low=1, resume=FREE
    )
    checkpoint_every: int = declare(
        1000,
        help="Steps between checkpoints (plus one per epoch).",
        type=int,
        unit="STEPS",
        low=1,
        resume=FREE,
    )
    max_steps: int | None = declare(
        None,
        help="Stop after this many steps in all (resumable).",
        type=int,
        unit="STEPS",
        low=1,
        resume=FREE,
    )
    monitor: str | None = declare(
        None,
        help="Labelled images (--monitor-dataset's layout): log every tap's kNN top-1 on a "
        "fixed few thousand of them before training and after each epoch (docs/train.md).",
        type=Path,
        unit="DIR",
        parse=str,
        resume=FREE,
    )
    monitor_dataset: str = declare(
        "imagefolder", help="--monitor's layout. " + DATASET.help, choices=DATASETS, resume=FREE
    )
    monitor_images: int = declare(
        5000,
        help="--monitor: images used, class-balanced; a fifth are the queries, the rest the "
        "kNN memory.",
        type=int,
        unit="IMAGES",
        low=1,
        resume=FREE,
    )
    quiet: bool = QUIET.field(False)
    # The process-group timeout; covers DeepCluster's clustering while other ranks wait.
    dist_timeout_minutes: float = declare(
        120.0,
        help="Under torchrun: how long a collective may wait before the job fails (NCCL's "
        "default is 10; DeepCluster's other ranks wait while rank 0 clusters).",
        type=float,
        unit="MINUTES",
        low=0,
        open_low=True,
        resume=FREE,
    )

    def __post_init__(self) -> None:
        settings.check(self)

    @property
    def progress(self) -> bool:
        return not self.quiet


def write_config(path: Path, config: TrainConfig) -> None:
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def read_config(path: Path) -> TrainConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        raise InputError(f"{path} is unreadable: {first_line(e)}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a training config")
    return TrainConfig.from_dict(data)
