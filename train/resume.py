"""Resuming a run: its stored config against the command's flags (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sslx.errors import InputError

if TYPE_CHECKING:
    from sslx.train.config import TrainConfig


# Flags that may differ on --resume: they change how long or how a run executes, not
# what a given step computes.
RESUMABLE = {
    "out",
    "resume",
    "shards",
    "method",
    "epochs",
    "workers",
    "device",
    "compile",
    "amp",
    "channels_last",
    "log_every",
    "checkpoint_every",
    "max_steps",
    "quiet",
    "verify_shards",
    "dist_timeout_minutes",
}
# Where each result-shaping flag lands in config.yaml (method options: method_options.NAME).
FIELDS = {
    "size": "model.input_size",
    "sobel": "model.sobel",
    "classifier_width": "model.classifier_width",
    "conv1_stride": "model.conv1_stride",
    "batch_size": "optim.batch_size",
    "lr": "optim.lr",
    "momentum": "optim.momentum",
    "weight_decay": "optim.weight_decay",
    "nesterov": "optim.nesterov",
    "lr_milestones": "optim.lr_milestones",
    "lr_gamma": "optim.lr_gamma",
    "crop_scale_min": "crop.crop_scale_min",
    "crop_scale_max": "crop.crop_scale_max",
    "aspect_ratio_min": "crop.aspect_ratio_min",
    "flip_prob": "crop.flip_prob",
    "seed": "seed",
    "init": "init",
    "freeze": "freeze",
    "shuffle_buffer": "shuffle_buffer",
    "max_bad_fraction": "max_bad_fraction",
    "precision": "precision",
}
# Data locations may move between resumes: the checkpoint's data fingerprint checks them.
MOVABLE = {"shards", "method_options.data_dir", "method_options.val_dir"}


def flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def as_flag(value):
    """A config value as its flag would spell it (lists as comma-separated text)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def check_not_finished(out: Path, config: TrainConfig) -> None:
    """Resuming a finished run needs a larger --epochs, and one that an epoch hook stopped
    (--patience) is final; say so instead of doing nothing."""
    from sslx.train.checkpoint import load_checkpoint

    progress = load_checkpoint(out).get("progress", {})
    done = progress.get("epoch", 0)
    if progress.get("finished") and progress.get("stopped"):
        raise InputError(
            f"the run in {out} is finished: --{progress['stopped']} stopped it after {done} "
            "epoch(s) (the best epoch is in its metrics.jsonl); it cannot be continued"
        )
    if progress.get("finished") and config.optim.epochs <= done:
        raise InputError(
            f"the run in {out} is finished ({done} epoch(s)); to train longer give "
            f"--resume --epochs N with N > {done}"
        )
    if config.optim.epochs < done:
        raise InputError(f"the run in {out} has already trained {done} epoch(s); "
                         f"--epochs {config.optim.epochs} is fewer")  # fmt: skip
