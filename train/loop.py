"""The one training loop, shaped like torchvision's reference train.py.

It knows nothing about any method: it streams batches, calls `method(images, batch)`
for a loss, steps the optimiser, logs, checkpoints and calls the method's epoch hooks.
Everything that decides a run's numbers is in `TrainConfig`; resuming from a
checkpoint reproduces an uninterrupted run exactly (same data order, same crops,
same dropout masks) as long as the rank and loader-worker counts are the same.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sslx import seeds
from sslx.errors import InputError
from sslx.train import distributed
from sslx.train.alexnet import CONV_LAYERS, AlexNet
from sslx.train.checkpoint import (
    CHECKPOINT_NAME,
    build_checkpoint,
    load_backbone,
    load_checkpoint,
    save_atomic,
)
from sslx.train.config import RunOptions, TrainConfig, read_config, write_config
from sslx.train.data import ShardStream, init_loader_worker, rank_batch_size, steps_per_epoch
from sslx.train.indexed import EpochDataset, epoch_loader, rank_batches
from sslx.train.methods import METHODS, EpochContext, Method, StepOutput
from sslx.train.metrics import MetricsLog

CONFIG_NAME = "config.yaml"


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (= epochs completed)
    step_in_epoch: int = 0
    global_step: int = 0
    finished: bool = False


@dataclass
class RunResult:
    progress: Progress
    stopped: str | None  # why the run stopped early ("interrupted", "max_steps"), if it did
    method: Method
    out: Path


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


def build_method(config: TrainConfig, from_init: bool = True) -> Method:
    """Backbone + heads, initialised from the run seed (identical on every rank); then
    `--init` layers copied in (new runs only: a resume restores its own weights) and
    `--freeze` layers fixed."""
    if config.method not in METHODS:
        raise InputError(f"unknown method {config.method!r} (known: {', '.join(METHODS)})")
    torch.manual_seed(seeds.int_seed(config.seed, "init"))
    backbone = AlexNet(config.model)
    if config.init and from_init:
        copy_layers(config.init, backbone, config.freeze or CONV_LAYERS)
    backbone.freeze(config.freeze)
    return METHODS[config.method](backbone, config.method_options)


def copy_layers(path: str, backbone: AlexNet, layers: tuple[str, ...]) -> None:
    """Copy conv `layers` (weights and BatchNorm statistics) from a checkpoint's backbone."""
    source, _ = load_backbone(path)
    if source.config.resolved() != backbone.config.resolved():
        raise InputError(
            f"--init {path} is a {_model_text(source.config)} network, this run a "
            f"{_model_text(backbone.config)} one; match --size/--sobel/--conv1-stride/"
            "--classifier-width to it"
        )
    for name in layers:
        backbone.convs[name].load_state_dict(source.convs[name].state_dict())


def _model_text(model) -> str:
    m = model.resolved()
    return (
        f"{m.input_size} px, sobel {m.sobel}, conv1 stride {m.conv1_stride}, "
        f"fc {m.classifier_width}"
    )


def build_optimizer(method: Method, config: TrainConfig) -> torch.optim.Optimizer:
    return method.configure_optimizer(config.optim)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """Step decay per epoch at the configured milestones."""
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.optim.lr_milestones), gamma=config.optim.lr_gamma
    )


def default_workers(device: torch.device, world_size: int) -> int:
    """One decoder keeps up with CPU training; a GPU needs several."""
    if device.type != "cuda":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    local = max(1, torch.cuda.device_count() if world_size > 1 else 1)
    return max(1, min(8, (cores or 2) // local - 1))


def step_seed(seed: int, step: int, rank: int) -> int:
    """Seed of the torch RNG (dropout) at a step: resumes replay the same masks."""
    return seeds.int_seed(seed, "dropout", step, rank)


class StopSignal:
    """First SIGINT/SIGTERM asks the loop to stop after the current step, with a checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
        try:
            yield self
        finally:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)


class Meter:
    """Batch-size-weighted sums of the method's metrics between two log points."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.started = time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor], n: int) -> None:
        for k, v in metrics.items():
            v = v.detach().float() * n
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += n


def train(config: TrainConfig, out: Path, options: RunOptions, resume: bool = False) -> RunResult:
    """Run (or continue) a training run in `out`; returns when it ends or is stopped."""
    device = distributed.pick_device(options.device, distributed.local_rank_from_env())
    dist = distributed.setup(device)
    try:
        with StopSignal().installed() as stop:
            return _train(config, Path(out), options, resume, device, dist, stop)
    finally:
        distributed.teardown()


@dataclass
class Run:
    """Everything a run holds; the loop's small functions take it instead of 13 arguments."""

    config: TrainConfig
    options: RunOptions
    out: Path
    device: torch.device
    dist: distributed.Dist
    stop: StopSignal
    data: ShardStream
    method: Method
    model: torch.nn.Module  # the method, wrapped in DDP and/or torch.compile
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    progress: Progress
    workers: int
    log: MetricsLog | None = None

    @property
    def layout(self) -> dict:
        return {"world_size": self.dist.world_size, "workers": self.workers}


def _train(config, out, options, resume, device, dist, stop) -> RunResult:
    payload = load_checkpoint(out / CHECKPOINT_NAME) if resume else None
    per_rank = rank_batch_size(config.optim.batch_size, dist.world_size)
    if dist.is_main and options.progress:
        print(
            f"sslx: global batch {config.optim.batch_size} over {dist.world_size} rank(s): "
            f"{per_rank} per rank",
            file=sys.stderr,
        )
    method = build_method(config, from_init=payload is None).to(device)
    data = method.make_data() or ShardStream(
        config.shards,
        batch_size=config.optim.batch_size,
        input_size=config.model.input_size,
        crop=config.crop,
        seed=config.seed,
        shuffle_buffer=config.shuffle_buffer,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    method.check_data(data.num_samples)
    optimizer = build_optimizer(method, config)
    workers = options.workers
    run = Run(
        config, options, out, device, dist, stop, data, method, method, optimizer,
        build_scheduler(optimizer, config), Progress(),
        default_workers(device, dist.world_size) if workers is None else workers,
    )  # fmt: skip
    if payload is not None:
        _restore(run, payload)
    elif dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out / CONFIG_NAME, config)
    distributed.barrier()
    run.model = _wrap(method, device, dist, options)
    run.log = MetricsLog(out, dist.is_main, run.progress.global_step)
    progress = run.progress
    try:
        while progress.epoch < config.optim.epochs:
            extra = {"start_step": progress.step_in_epoch, "dist": dist}
            ctx = EpochContext(
                progress.epoch, device, data, run.log, extra,
                config=config, out=out, workers=run.workers, step=progress.global_step,
            )  # fmt: skip
            method.on_epoch_start(ctx)
            stopped = train_one_epoch(run, method.epoch_data(ctx))
            if stopped:
                return RunResult(progress, stopped, method, out)
            method.on_epoch_end(ctx)
            run.scheduler.step()
            progress.epoch += 1
            progress.step_in_epoch = 0
            progress.finished = progress.epoch >= config.optim.epochs
            save_checkpoint(run)
        return RunResult(progress, None, method, out)
    finally:
        run.log.close()


def train_one_epoch(run: Run, draws: EpochDataset | None = None) -> str | None:
    """One pass over this rank's share of the shards (or of the method's draws for this
    epoch); returns why it stopped early, if so."""
    config, options, progress, dist = run.config, run.options, run.progress, run.dist
    epoch = progress.epoch
    loader, steps = _epoch_batches(run, draws)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if run.device.type == "cuda" and options.amp
        else nullcontext()
    )
    run.model.train()
    meter, bad, reported = Meter(), 0, set()
    per_rank = rank_batch_size(config.optim.batch_size, dist.world_size)
    allowed_bad = config.max_bad_fraction * steps * per_rank
    bar = tqdm(
        total=steps,
        initial=progress.step_in_epoch,
        desc=f"epoch {epoch + 1}/{config.optim.epochs}",
        unit="step",
        disable=not (options.progress and dist.is_main),
        dynamic_ncols=True,
    )
    with bar:
        for batch in loader:
            bad += batch["bad"]
            _report_errors(batch["errors"], reported, dist)
            if bad > allowed_bad:
                raise InputError(
                    f"{bad} unreadable samples in epoch {epoch + 1} on rank {dist.rank}, more "
                    f"than --max-bad-fraction {config.max_bad_fraction} allows; first: "
                    f"{next(iter(reported), 'see warnings above')}"
                )
            if batch["image"].shape[0] == 0:
                raise InputError(f"a batch of epoch {epoch + 1} had no readable samples")
            output = train_step(run, batch, autocast)
            meter.add({"loss": output.loss, **output.metrics}, batch["image"].shape[0])
            bar.update(1)

            last = progress.step_in_epoch == steps
            limit = options.max_steps is not None and progress.global_step >= options.max_steps
            save = progress.global_step % options.checkpoint_every == 0 and not last
            local_stop = run.stop.requested and not dist.enabled
            if progress.global_step % options.log_every == 0 or last or save or limit or local_stop:
                record, stop_all = _flush(run, meter, bad)
                bar.set_postfix(loss=f"{record['loss']:.3f}", img_s=f"{record['img_per_s']:.0f}")
                run.log.write(record, progress.global_step)
                meter = Meter()
                if stop_all or limit:
                    save_checkpoint(run)
                    return "interrupted" if stop_all else "max_steps"
            if save:
                save_checkpoint(run)
    run.log.write(
        {"event": "epoch_end", "epoch": epoch + 1, "bad_samples": bad}, progress.global_step
    )
    return None


def _epoch_batches(run: Run, draws: EpochDataset | None):
    """The epoch's loader and its length in steps: the shard stream, or the method's draws
    split into contiguous stretches per rank (from `step_in_epoch` on, when resuming)."""
    pin = run.device.type == "cuda"
    if draws is None:
        run.data.set_epoch(run.progress.epoch, run.progress.step_in_epoch)
        loader = torch.utils.data.DataLoader(
            run.data,
            batch_size=None,
            num_workers=run.workers,
            pin_memory=pin,
            worker_init_fn=init_loader_worker,
            prefetch_factor=4 if run.workers > 0 else None,
        )
        return loader, run.data.steps
    batch_size, dist = run.config.optim.batch_size, run.dist
    steps = steps_per_epoch(len(draws), batch_size)
    if steps == 0:
        raise InputError(
            f"{len(draws)} draws are fewer than one batch of {batch_size}; lower --batch-size"
        )
    batches = rank_batches(
        len(draws), batch_size, dist.rank, dist.world_size, run.progress.step_in_epoch
    )
    return epoch_loader(draws, batches, run.workers, pin), steps


def train_step(run: Run, batch: dict, autocast) -> StepOutput:
    """Forward, backward and update on one batch of uint8 NHWC images."""
    # NHWC -> NCHW as a view: on the device the batch is channels-last already.
    images = batch["image"].to(run.device, non_blocking=True).permute(0, 3, 1, 2)
    extra = {
        k: batch[k].to(run.device, non_blocking=True) for k in ("index", "label") if k in batch
    }
    torch.manual_seed(step_seed(run.config.seed, run.progress.global_step, run.dist.rank))
    with autocast:
        output = run.model(images, extra)
    run.optimizer.zero_grad(set_to_none=True)
    output.loss.backward()
    run.optimizer.step()
    run.progress.step_in_epoch += 1
    run.progress.global_step += 1
    return output


def _flush(run: Run, meter: Meter, bad: int) -> tuple[dict, bool]:
    """Average the meter over ranks, check the loss is finite, agree on stopping."""
    keys = sorted(meter.sums)
    device = meter.sums[keys[0]].device if keys else torch.device("cpu")
    values = torch.stack(
        [meter.sums[k].to(device) for k in keys]
        + [torch.tensor(float(x), device=device) for x in (meter.count, bad, run.stop.requested)]
    )
    values = distributed.all_reduce_sum(values).cpu().tolist()
    count, total_bad, stop_votes = values[-3:]
    record = {k: v / max(count, 1) for k, v in zip(keys, values, strict=False)}
    if not all(math.isfinite(v) for v in record.values()):
        raise InputError(
            f"the loss became non-finite by step {run.progress.global_step}; the last good "
            "checkpoint is kept. Lower --lr or check the data"
        )
    seconds = time.perf_counter() - meter.started
    record.update(
        epoch=run.progress.epoch + 1,
        lr=run.optimizer.param_groups[0]["lr"],
        img_per_s=count / seconds if seconds > 0 else 0.0,
        bad_samples=int(total_bad),
    )
    return record, stop_votes > 0


def _report_errors(errors: list[str], reported: set[str], dist) -> None:
    """Each unreadable shard or sample is reported once; the rest is counted."""
    for message in errors:
        key = message.split(":")[0]
        if key not in reported:
            reported.add(key)
            prefix = f"[rank {dist.rank}] " if dist.enabled else ""
            tqdm.write(f"sslx: warning: {prefix}{message}", file=sys.stderr)


def _wrap(method, device, dist, options):
    if device.type == "cuda":
        method.to(memory_format=torch.channels_last)
    model = method
    if dist.enabled:
        model = DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    if options.compile:
        model = torch.compile(model)
    return model


def _restore(run: Run, payload: dict) -> None:
    if payload["data"].get("fingerprint") != run.data.fingerprint:
        where = run.config.shards or run.config.method_options.get("data_dir")
        raise InputError(
            f"{where} is not the dataset this run was trained on "
            "(its config, sources, files or labels differ)"
        )
    backbone = {f"backbone.{k}": v for k, v in payload["backbone"].items()}
    try:
        run.method.load_state_dict({**backbone, **payload["heads"]})
    except RuntimeError as e:
        raise InputError(f"checkpoint does not fit method {run.method.name}: {e}") from None
    run.optimizer.load_state_dict(payload["optimizer"])
    run.scheduler.load_state_dict(payload["scheduler"])
    run.progress = Progress(**payload["progress"])
    if run.progress.step_in_epoch and payload.get("layout") != run.layout and run.dist.is_main:
        tqdm.write(
            f"sslx: warning: resuming mid-epoch with {run.layout} instead of "
            f"{payload.get('layout')}; the rest of this epoch reads the data in a different "
            "order than an uninterrupted run would",
            file=sys.stderr,
        )


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
        )
        save_atomic(payload, run.out / CHECKPOINT_NAME)
    distributed.barrier()
