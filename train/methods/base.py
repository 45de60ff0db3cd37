"""The method plug-in interface (solo-learn's registry, mmselfsup's hooks).

A method owns its heads and its loss. The training loop only ever calls:

- `Method(backbone, options)`: build the heads for this backbone (`options` is an
  instance of the spec's options dataclass);
- `method(images, batch) -> StepOutput`: loss and metrics for one batch (this is the
  module's forward, so DDP sees it); `images` is uint8 (b, 3, S, S) on the device and
  `batch` the step's `Batch` there (indices, labels);
- `method.parameter_groups()`: what the optimiser updates (all trainable parameters
  unless a method says otherwise);
- `method.configure_optimizer(optim)`: the optimiser (`--optimizer`, see `optimizers.py`);
- `method.before_optimizer_step(step)` / `after_optimizer_step(step)`: per-step hooks
  around the update (gradient clipping, an EMA teacher);
- `method.views(crop, size)`: the views a multi-view method trains on (`sslx.common.views`),
  each sample decoded once and cropped once per view; () for one image per sample;
- the hooks `on_epoch_start(ctx)` / `on_epoch_end(ctx)`, e.g. DeepCluster's clustering,
  the supervised validation (which adds to the epoch's record and may end the run);
- `method.run_state()` / `load_run_state(state)`: plain values beyond parameters and
  buffers that a resume must restore (the checkpoint's `method_state`);
- `method.epoch_data(ctx)`: None to stream the shards as they are (RotNet), or the
  epoch's own draws, a map-style dataset of `(image, index, label, error)` items
  (DeepCluster's samples, uniform over clusters, with their pseudo-labels);
- `method.check_data(num_samples)`: refuse a dataset before the run folder is written;
- `method.make_data()`: a method that reads no shards (`needs_shards = False`, the
  supervised reference) gives its own dataset here.

A method's name, defaults, options and pretext measure live in its torch-free
`MethodSpec` (its folder's `spec.py`); the class names it (`spec = SPEC`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import torch
from torch import nn

from sslx.train.backbone import Backbone
from sslx.train.distributed import Dist
from sslx.train.methods.spec import MethodSpec, OptimDefaults

if TYPE_CHECKING:
    from sslx.common.optim import OptimConfig
    from sslx.common.sampling import CropConfig
    from sslx.common.views import ViewSpec
    from sslx.train.batches import Batch
    from sslx.train.config import TrainConfig
    from sslx.train.metrics import MetricsLog


class StepOutput(NamedTuple):
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]  # detached scalars, averaged over batches when logged


class TrainingData(Protocol):
    """What a run trains on: the `ShardStream`, or a method's own data (`make_data`)."""

    where: str  # the folder it was read from (for messages)
    num_samples: int
    fingerprint: str  # what a resume checks: the same data, wherever it lies now


@dataclass(frozen=True)
class StepInfo:
    """The step being taken, for the per-step hooks and schedules of a method."""

    step: int  # global step, 0-based
    total: int  # steps of the whole run: --epochs x steps per epoch
    epoch: int  # 0-based
    optimizer: torch.optim.Optimizer


@dataclass
class EpochContext:
    """What epoch hooks may use: the epoch, the run and where it runs."""

    epoch: int  # 0-based
    device: torch.device
    config: TrainConfig
    out: Path  # the run folder
    data: TrainingData
    dist: Dist = field(default_factory=Dist)
    log: MetricsLog | None = None
    workers: int = 0  # loader processes per rank
    step: int = 0  # global step at the start of the hook
    start_step: int = 0  # > 0: the epoch resumes after this many steps
    verbose: bool = False  # a hook may print a short line on stderr (main rank, not --quiet)
    # The training step's arithmetic (`precision.step_autocast`), for a hook's own passes.
    autocast: AbstractContextManager = field(default_factory=nullcontext)
    # True once the user asked to stop (Ctrl-C, SIGTERM) in a one-process run: a hook that
    # takes minutes may then give up by raising `stop.StopRequested` (ranks would have to
    # agree first, so under torchrun the request waits for the first step's vote).
    stop_requested: Callable[[], bool] = lambda: False
    # Set by `on_epoch_end`: scalars added to the epoch's "epoch_end" record in metrics.jsonl
    # and TensorBoard, and a reason to end the run after this epoch (it is then finished,
    # `Progress.stopped`), e.g. the supervised "patience".
    record: dict = field(default_factory=dict)
    stop: str | None = None


class Method(nn.Module):
    spec: ClassVar[MethodSpec]
    # Copied from `spec` by every subclass that sets one.
    name: ClassVar[str]
    defaults: ClassVar[OptimDefaults]
    needs_shards: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            spec = cls.spec
            cls.name, cls.defaults, cls.needs_shards = spec.name, spec.defaults, spec.needs_shards

    def __init__(self, backbone: Backbone, options: Any = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.options = self.spec.options() if options is None else options

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def parameter_groups(self) -> list[dict]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizer(self, optim: OptimConfig) -> torch.optim.Optimizer:
        """The configured optimiser (`--optimizer`, the method's paper's by default) over
        `parameter_groups()`."""
        from sslx.train.optimizers import build_optimizer

        return build_optimizer(self.parameter_groups(), optim)

    def before_optimizer_step(self, step: StepInfo) -> None:
        """Called after the backward pass, before the update (e.g. DINO's gradient clipping,
        its frozen last layer and its weight-decay schedule)."""

    def after_optimizer_step(self, step: StepInfo) -> None:
        """Called after the update (e.g. an EMA teacher's)."""

    def views(self, crop: CropConfig, size: int) -> tuple[ViewSpec, ...]:
        """The views of each sample a multi-view method trains on (`batch.views`), given the
        run's train crop and input size; () for one crop per sample (`batch.image`)."""
        return ()

    def make_data(self) -> TrainingData | None:
        """The training data of a method that reads no shards: an object with `num_samples`
        and `fingerprint`, whose epochs come from `epoch_data`."""
        return None

    def check_data(self, num_samples: int) -> None:
        """Raise InputError if the method cannot train on a dataset of this size."""

    def check_resume(self, out: Path, epoch: int, step_in_epoch: int, num_samples: int) -> None:
        """Raise InputError if the run's own files that a resume reads are damaged; called
        before the resume writes anything."""

    def epoch_data(self, ctx: EpochContext) -> torch.utils.data.Dataset | None:
        """This epoch's draws (image, index, label, error), or None to stream the shards.

        Called after `on_epoch_start`. The loop splits the draws between ranks, batches
        them and passes each batch's labels to `forward` as `batch.label`.
        """
        return None

    def run_state(self) -> dict:
        """Plain values (numbers, strings, None) a resume must restore that are not
        parameters or buffers, e.g. an early-stopping count; the checkpoint's `method_state`."""
        return {}

    def load_run_state(self, state: dict) -> None:
        """Restore `run_state()` from a checkpoint (`{}` for one written without it)."""

    def on_epoch_start(self, ctx: EpochContext) -> None:
        """Called before each epoch (also the first one after a resume)."""

    def on_epoch_end(self, ctx: EpochContext) -> None:
        """Called after each epoch, before its record and checkpoint are written; may fill
        `ctx.record` and set `ctx.stop` (the same on every rank)."""
