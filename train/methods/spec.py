"""What sslx knows about a method without importing torch: its `MethodSpec`.

Each method's folder holds a torch-free `spec.py` with its `SPEC`: name, one-line
summary, paper defaults (`OptimDefaults`, with the reference they come from), its own
options (a dataclass of `sslx.settings` declarations), the pretext measure it logs
(`Pretext`, read by `sslx viz ablation`'s curves), its documentation and the name of its
plug-in class in the folder's `method.py`. `sslx train --help`, the run config and the
resume rules are built from the specs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from sslx.train.model import ARCHS


@dataclass(frozen=True)
class OptimDefaults:
    """A method's paper defaults for the settings its paper fixes (`sslx train` flags
    whose help says "the method's"). `momentum` is SGD's, or Adam's beta1."""

    batch_size: int
    epochs: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    optimizer: str = "sgd"
    lr_schedule: str = "step"
    warmup_epochs: float = 0
    final_lr: float = 0.0
    lr_scaling: str = "none"  # "linear": lr is per 256 images
    sobel: bool = False
    input_size: int = 224  # the model's input size in pixels
    crop_scale_min: float = 0.08  # the train crop's (the global views' for multi-view methods)
    reference: str = ""

    def values(self) -> dict[str, Any]:
        """The defaults by setting key (the flags-to-config step's fallback)."""
        return {k: v for k, v in asdict(self).items() if k != "reference"}


@dataclass(frozen=True)
class Pretext:
    """The measure a method logs on its own task (a key of its `StepOutput.metrics`, so of
    every training record in metrics.jsonl) and its chance level, if it has one."""

    metric: str
    chance: float | None = None


@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str  # a short line (under 65 characters), for `sslx train --help`
    defaults: OptimDefaults
    pretext: Pretext
    plugin: str  # the `Method` subclass in the method's `method.py`
    docs: str  # where a user reads about it
    options: type = NoOptions  # a frozen dataclass of settings, stored as method_options
    needs_shards: bool = True  # False: the method reads its own (labelled) data
    archs: tuple[str, ...] = ARCHS  # the backbones it can train

    def make_options(self, values: dict[str, Any] | None = None) -> Any:
        """The options from stored or given values (missing ones take their defaults)."""
        from sslx.errors import InputError

        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{', '.join(unknown)}: not options of {self.name} (newer sslx?)")
        return self.options(**values)
