"""A training run's state and its folder: what the loop holds, what a checkpoint saves and
restores, and the checks on `--out` before a run starts."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from sslx.atomic import save_torch_atomic
from sslx.errors import InputError, first_line
from sslx.train import distributed
from sslx.train.checkpoint import CHECKPOINT_NAME, build_checkpoint
from sslx.train.config import RunOptions, TrainConfig, read_config

if TYPE_CHECKING:
    import torch

    from sslx.train.methods.base import Method, TrainingData
    from sslx.train.metrics import MetricsLog
    from sslx.train.optimizers import Schedule
    from sslx.train.stop import StopSignal

CONFIG_NAME = "config.yaml"


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (= epochs completed)
    step_in_epoch: int = 0
    global_step: int = 0
    finished: bool = False
    stopped: str | None = None  # why a finished run ended before --epochs ("patience")


def prepare_run_dir(out: Path, resume: bool, config: TrainConfig | None = None) -> TrainConfig:
    """Check the run folder and return the config to run: the stored one on resume."""
    if resume:
        if not (out / CHECKPOINT_NAME).exists():
            raise InputError(f"nothing to resume: {out / CHECKPOINT_NAME} does not exist")
        return read_config(out / CONFIG_NAME)
    if (out / CHECKPOINT_NAME).exists():
        raise InputError(
            f"{out} already holds a run; add --resume to continue it, or choose another --out"
        )
    # A run that stopped before its first checkpoint may be restarted with the same config.
    if (out / CONFIG_NAME).exists() and read_config(out / CONFIG_NAME) != config:
        raise InputError(f"{out} holds a different run's config.yaml; choose another --out")
    return config


@dataclass
class Run:
    """Everything a run holds; the loop's small functions take it instead of 13 arguments."""

    config: TrainConfig
    options: RunOptions
    out: Path
    device: torch.device
    dist: distributed.Dist
    stop: StopSignal
    data: TrainingData  # the ShardStream, or a method's own data (`Method.make_data`)
    method: Method
    model: torch.nn.Module  # the method, wrapped in DDP and/or torch.compile
    optimizer: torch.optim.Optimizer
    scheduler: Schedule
    progress: Progress
    workers: int
    log: MetricsLog | None = None

    @property
    def layout(self) -> dict:
        return {"world_size": self.dist.world_size, "workers": self.workers}


def restore_checkpoint(run: Run, payload: dict) -> None:
    """Put a checkpoint's weights, optimiser, schedule and progress into a new run."""
    if payload["data"].get("fingerprint") != run.data.fingerprint:
        raise InputError(
            f"{run.data.where} is not the dataset this run was trained on "
            "(its config, sources, files or labels differ)"
        )
    backbone = {f"backbone.{k}": v for k, v in payload["backbone"].items()}
    try:
        run.method.load_state_dict({**backbone, **payload["heads"]})
    except RuntimeError as e:
        raise InputError(
            f"checkpoint does not fit method {run.method.name}: {first_line(e)}"
        ) from None
    if payload["optimizer"] is None or payload["scheduler"] is None:
        raise InputError("the checkpoint holds weights only (no optimiser state): it cannot resume")
    try:
        run.optimizer.load_state_dict(payload["optimizer"])
        run.scheduler.load_state_dict(payload["scheduler"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(
            f"the checkpoint's optimiser state does not fit this run ({first_line(e)}); "
            "resume from a copy of the run or start a new one"
        ) from None
    known = {f.name for f in fields(Progress)}  # keys a later sslx adds are ignored
    run.progress = Progress(**{k: v for k, v in payload["progress"].items() if k in known})
    run.method.load_run_state(payload.get("method_state") or {})
    p = run.progress
    run.method.check_resume(run.out, p.epoch, p.step_in_epoch, run.data.num_samples)
    moved = _order(payload.get("layout")) != _order(run.layout)
    if run.progress.step_in_epoch and moved and run.dist.is_main:
        tqdm.write(
            f"sslx: warning: resuming mid-epoch with {run.layout} instead of "
            f"{payload.get('layout')}; the rest of this epoch reads the data in a different "
            "order than an uninterrupted run would",
            file=sys.stderr,
        )


def _order(layout: dict | None) -> dict | None:
    """What the data order depends on: 0 and 1 loader workers read the same stream."""
    if not layout:
        return layout
    return {**layout, "workers": max(1, int(layout.get("workers", 0)))}


def save_checkpoint(run: Run) -> None:
    """Write checkpoint.pt (main rank only, atomically); all ranks wait for it."""
    if run.dist.is_main:
        state = run.method.state_dict()
        payload = build_checkpoint(
            config=run.config.to_dict(),
            model=run.config.model,
            method=run.config.method,
            backbone=run.method.backbone.state_dict(),
            heads={k: v for k, v in state.items() if not k.startswith("backbone.")},
            progress=asdict(run.progress),
            optimizer=run.optimizer.state_dict(),
            scheduler=run.scheduler.state_dict(),
            layout=run.layout,
            data={
                "shards": str(run.config.shards),
                "num_samples": run.data.num_samples,
                "fingerprint": run.data.fingerprint,
            },
            method_state=run.method.run_state(),
        )
        save_torch_atomic(payload, run.out / CHECKPOINT_NAME)
    distributed.barrier()
