"""Resuming a run: its stored config against the command's flags (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sslx.errors import InputError

if TYPE_CHECKING:
    from sslx.train.config import TrainConfig


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
