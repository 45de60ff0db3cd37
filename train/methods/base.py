"""The method plug-in interface and the registry (solo-learn's METHODS idea).

A method owns its heads and its loss. The training loop only ever calls:

- `Method(backbone, options)`: build the heads for this backbone;
- `method(images, batch) -> StepOutput`: loss and metrics for one batch (this is the
  module's forward, so DDP sees it);
- `method.parameter_groups()`: what the optimiser updates (all trainable parameters
  unless a method says otherwise);
- `method.configure_optimizer(optim)`: the optimiser (SGD unless a method says otherwise);
- the hooks `on_epoch_start(ctx)` / `on_epoch_end(ctx)`, e.g. DeepCluster's clustering,
  the supervised validation (which adds to the epoch's record and may end the run);
- `method.run_state()` / `load_run_state(state)`: plain values beyond parameters and
  buffers that a resume must restore (the checkpoint's `method_state`);
- `method.epoch_data(ctx)`: None to stream the shards as they are (RotNet), or the
  epoch's own draws as an `EpochDataset` (DeepCluster's samples, uniform over clusters,
  with their pseudo-labels);
- `method.check_data(num_samples)`: refuse a dataset before the run folder is written;
- `method.make_data()`: a method that reads no shards (`needs_shards = False`, the
  supervised reference) gives its own dataset here.

A method's name, optimiser and schedule defaults (from its paper) and own options live
in its torch-free `MethodSpec` (`specs.py`), so `sslx train --help` needs no torch; the
class names its spec (`spec = ROTNET`) and takes them from there. Every default can be
overridden from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import torch
from torch import nn

from sslx.train.alexnet import AlexNet
from sslx.train.indexed import EpochDataset
from sslx.train.methods.specs import MethodOption, MethodSpec, OptimDefaults

if TYPE_CHECKING:
    from sslx.train.config import OptimConfig, TrainConfig


class StepOutput(NamedTuple):
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]  # detached scalars, averaged over batches when logged


@dataclass
class EpochContext:
    """What epoch hooks may use: the epoch, the data, the run's config, folder and logger."""

    epoch: int
    device: torch.device
    data: Any = None
    log: Any = None
    extra: dict = field(default_factory=dict)  # "start_step" (> 0: resumed mid-epoch), "dist"
    config: TrainConfig | None = None
    out: Path | None = None  # the run folder
    workers: int = 0  # loader processes per rank
    step: int = 0  # global step at the start of the hook
    verbose: bool = False  # a hook may print a short line on stderr (main rank, not --quiet)
    # Set by `on_epoch_end`: scalars added to the epoch's "epoch_end" record in metrics.jsonl
    # and TensorBoard, and a reason to end the run after this epoch (it is then finished,
    # `Progress.stopped`), e.g. the supervised "patience".
    record: dict = field(default_factory=dict)
    stop: str | None = None


class Method(nn.Module):
    spec: ClassVar[MethodSpec]
    # Copied from `spec` by every subclass that sets one (a subclass may rename itself).
    name: ClassVar[str]
    defaults: ClassVar[OptimDefaults]
    options: ClassVar[dict[str, MethodOption]] = {}
    needs_shards: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            spec = cls.spec
            cls.name, cls.defaults, cls.needs_shards = spec.name, spec.defaults, spec.needs_shards
            cls.options = dict(spec.options)

    def __init__(self, backbone: AlexNet, options: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.method_options = {k: options.get(k, o.default) for k, o in self.options.items()}

    def forward(self, images: torch.Tensor, batch: dict) -> StepOutput:
        raise NotImplementedError

    def parameter_groups(self) -> list[dict]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizer(self, optim: OptimConfig) -> torch.optim.Optimizer:
        """SGD with (Nesterov) momentum; methods whose paper uses another optimiser override it."""
        return torch.optim.SGD(
            self.parameter_groups(),
            lr=optim.lr,
            momentum=optim.momentum,
            weight_decay=optim.weight_decay,
            nesterov=optim.nesterov and optim.momentum > 0,
        )

    def make_data(self) -> Any | None:
        """The training data of a method that reads no shards: an object with `num_samples`
        and `fingerprint`, whose epochs come from `epoch_data`."""
        return None

    def check_data(self, num_samples: int) -> None:
        """Raise InputError if the method cannot train on a dataset of this size."""

    def check_resume(self, out: Path, epoch: int, step_in_epoch: int, num_samples: int) -> None:
        """Raise InputError if the run's own files that a resume reads are damaged; called
        before the resume writes anything."""

    def epoch_data(self, ctx: EpochContext) -> EpochDataset | None:
        """This epoch's draws (image, index, label), or None to stream the shards.

        Called after `on_epoch_start`. The loop splits the draws between ranks, batches
        them and passes each batch's labels to `forward` as `batch["label"]`.
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


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls
