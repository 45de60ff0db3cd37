"""Checkpoints: the contract between `sslx train` and `sslx probe` (docs/checkpoints.md).

A checkpoint is one `torch.save` file holding plain containers and tensors only, so
`torch.load(..., weights_only=True)` reads it. It is written atomically (`sslx.atomic`),
so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from sslx.datagen.shards import sslx_version
from sslx.errors import InputError, first_line
from sslx.train.backbone import Backbone, build_backbone
from sslx.train.model import ModelConfig

FORMAT = "sslx-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


def build_checkpoint(
    *,
    config: dict,
    model: ModelConfig,
    method: str,
    backbone: dict,
    heads: dict,
    progress: dict,
    optimizer: dict | None = None,
    scheduler: dict | None = None,
    layout: dict | None = None,
    data: dict | None = None,
    method_state: dict | None = None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sslx_version": sslx_version(),
        "method": method,
        "model": model.resolved().to_dict(),
        "config": config,
        "progress": progress,
        "layout": layout or {},
        "data": data or {},
        "backbone": backbone,
        "heads": heads,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "method_state": method_state or {},  # optional: older checkpoints lack it
    }


def resolve_path(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (meaning its checkpoint.pt)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a checkpoint; anything that is not one raises InputError."""
    path = resolve_path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # torch's text advises weights_only=False: never show it
        raise InputError(
            f"{path} is not an sslx checkpoint (it holds objects other than tensors)"
        ) from None
    except Exception as e:  # torch raises many types for foreign or damaged files
        raise InputError(f"{path} is not a readable checkpoint: {first_line(e)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not an sslx checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{path} has checkpoint format version {payload.get('format_version')}; "
            f"this sslx reads version {FORMAT_VERSION}"
        )
    problem = _field_problem(payload)
    if problem:
        raise InputError(
            f"{path} is damaged: {problem}; resume from a copy of the run or start a new one"
        )
    return payload


# Each field's type (docs/checkpoints.md); the optimiser, scheduler and method state may
# be null (a checkpoint made for probing). Counts are ints, never bools.
_FIELDS = {
    "method": str,
    "model": dict,
    "config": dict,
    "progress": dict,
    "layout": dict,
    "data": dict,
    "backbone": dict,
    "heads": dict,
}
_OPTIONAL = ("optimizer", "scheduler", "method_state")
_PROGRESS = {"epoch": int, "step_in_epoch": int, "global_step": int, "finished": bool}


def _field_problem(payload: dict) -> str | None:
    """What is of the wrong type in a checkpoint, or None."""

    def wrong(name: str, value: Any, kind: type) -> str | None:
        exact = kind is int and isinstance(value, bool)
        if exact or not isinstance(value, kind):
            return f"{name} is {type(value).__name__}, not {kind.__name__}"
        return None

    for name, kind in _FIELDS.items():
        if bad := wrong(name, payload.get(name), kind):
            return bad
    for name in _OPTIONAL:
        if payload.get(name) is not None and (bad := wrong(name, payload[name], dict)):
            return bad
    progress = payload["progress"]
    for name, kind in _PROGRESS.items():
        if name in progress and (bad := wrong(f"progress.{name}", progress[name], kind)):
            return bad
        if kind is int and name in progress and progress[name] < 0:
            return f"progress.{name} is negative"
    for name, value in payload["layout"].items():
        if bad := wrong(f"layout.{name}", value, int):
            return bad
    for part in ("backbone", "heads"):
        for name, value in payload[part].items():
            if not isinstance(value, torch.Tensor):
                return f"{part}.{name} is {type(value).__name__}, not a tensor"
    optimizer = payload.get("optimizer")
    if optimizer is not None and not (
        isinstance(optimizer.get("state"), dict) and isinstance(optimizer.get("param_groups"), list)
    ):
        return "optimizer has no state and param_groups"
    return None


def load_backbone(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[Backbone, dict]:
    """The trained backbone of a checkpoint (in eval mode) and the checkpoint's record."""
    payload = load_checkpoint(path, map_location)
    try:
        record = ModelConfig.from_dict(payload["model"])
    except InputError as e:
        raise InputError(f"{path}: a model record this sslx cannot build ({e})") from None
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"{path}: its model record is damaged ({first_line(e)})") from None
    try:
        model = build_backbone(record)
        model.load_state_dict(payload["backbone"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        raise InputError(
            f"{path}: the weights do not match its model record ({first_line(e)})"
        ) from None
    return model.eval(), payload


def copy_layers(path: str, backbone: Backbone, layers: tuple[str, ...]) -> None:
    """Copy `layers` (weights and BatchNorm statistics) from a checkpoint's backbone."""
    source, _ = load_backbone(path)
    if source.config.resolved() != backbone.config.resolved():
        raise InputError(
            f"--init {path} is a {_model_text(source.config)} network, this run a "
            f"{_model_text(backbone.config)} one; match --arch/--size/--sobel/--conv1-stride/"
            "--classifier-width to it"
        )
    for name in layers:
        backbone.units[name].load_state_dict(source.units[name].state_dict())


def _model_text(model) -> str:
    m = model.resolved()
    if m.arch != "alexnet":
        return f"{m.arch}, {m.input_size} px, sobel {m.sobel}"
    return (
        f"{m.input_size} px, sobel {m.sobel}, conv1 stride {m.conv1_stride}, "
        f"fc {m.classifier_width}"
    )
