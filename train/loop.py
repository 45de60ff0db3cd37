"""The one training loop, shaped like torchvision's reference train.py.

It knows nothing about any method: it streams batches, calls `method(images, batch)`
for a loss, steps the optimiser, logs, checkpoints and calls the method's epoch hooks.
Everything that decides a run's numbers is in `TrainConfig`; resuming from a
checkpoint reproduces an uninterrupted run exactly (same data order, same crops,
same dropout masks) as long as the rank and loader-worker counts are the same.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sslx import seeds
from sslx.common.device import (
    PREFETCH_BATCHES,
    check_shared_memory,
    default_workers,
    pick_device,
)
from sslx.common.timing import StepTimer
from sslx.errors import InputError, TrainingDiverged
from sslx.train import distributed
from sslx.train.backbone import build_backbone
from sslx.train.batches import (
    BadSamples,
    Batch,
    epoch_loader,
    init_loader_worker,
    rank_batch_size,
    rank_batches,
    steps_per_epoch,
)
from sslx.train.checkpoint import CHECKPOINT_NAME, copy_layers, load_checkpoint
from sslx.train.config import RunOptions, TrainConfig, write_config
from sslx.train.data import ShardStream
from sslx.train.device_decode import decode_on_device
from sslx.train.methods import plugin
from sslx.train.methods.base import EpochContext, Method, StepInfo, StepOutput
from sslx.train.metrics import Meter, MetricsLog
from sslx.train.monitor import measured, open_monitor
from sslx.train.optimizers import Schedule
from sslx.train.precision import set_cuda_arithmetic, step_autocast, use_channels_last
from sslx.train.report import LivePostfix, announce
from sslx.train.state import (
    CONFIG_NAME,
    Progress,
    Run,
    restore_checkpoint,
    save_checkpoint,
)
from sslx.train.stop import StopRequested, StopSignal


@dataclass
class RunResult:
    progress: Progress
    stopped: str | None  # "interrupted", "max_steps" (resumable), a hook's "patience" (finished)
    method: Method
    out: Path


def build_method(config: TrainConfig, from_init: bool = True) -> Method:
    """Backbone + heads, initialised from the run seed (identical on every rank); then
    `--init` layers copied in (new runs only: a resume restores its own weights) and
    `--freeze` layers fixed."""
    torch.manual_seed(seeds.int_seed(config.seed, "init"))
    backbone = build_backbone(config.model)
    if config.init and from_init:
        copy_layers(config.init, backbone, config.freeze or config.model.layers)
    backbone.freeze(config.freeze)
    return plugin(config.method)(backbone, config.method_options)


def step_seed(seed: int, step: int, rank: int) -> int:
    """Seed of the torch RNG (dropout) at a step: resumes replay the same masks."""
    return seeds.int_seed(seed, "dropout", step, rank)


def train(config: TrainConfig, out: Path, options: RunOptions, resume: bool = False) -> RunResult:
    """Run (or continue) a training run in `out`; returns when it ends or is stopped."""
    device = pick_device(
        options.device, distributed.local_rank_from_env(), distributed.local_world_size_from_env()
    )
    dist = distributed.setup(device, options.dist_timeout_minutes)
    if device.type == "cuda":
        set_cuda_arithmetic(config.precision, options.amp)
    try:
        with StopSignal(announce=dist.is_main).installed() as stop:
            return _train(config, Path(out), options, resume, device, dist, stop)
    finally:
        distributed.teardown()


def _train(config, out, options, resume, device, dist, stop) -> RunResult:
    payload = load_checkpoint(out / CHECKPOINT_NAME) if resume else None
    per_rank = rank_batch_size(config.optim.batch_size, dist.world_size)
    method = build_method(config, from_init=payload is None).to(device)
    views = method.views(config.crop, config.model.input_size)
    if options.decode == "gpu" and type(method).epoch_data is not Method.epoch_data:
        raise InputError(f"--decode gpu decodes the shard stream; {config.method} reads its own")
    data = method.make_data() or ShardStream(
        config.shards,
        batch_size=config.optim.batch_size,
        input_size=config.model.input_size,
        crop=config.crop,
        seed=config.seed,
        shuffle_buffer=config.shuffle_buffer,
        rank=dist.rank,
        world_size=dist.world_size,
        views=views,
        encoded=options.decode == "gpu",
    )
    method.check_data(data.num_samples)
    monitor = open_monitor(options, config.model, dist.is_main)
    optimizer = method.configure_optimizer(config.optim)
    workers = options.workers
    if workers is None:
        workers = default_workers(device, distributed.local_world_size_from_env())
    pixels = sum(v.size**2 for v in views) or config.model.input_size**2
    check_shared_memory(workers, 3 * pixels * per_rank, distributed.local_world_size_from_env())
    steps = steps_per_epoch(data.num_samples, config.optim.batch_size)
    scheduler = Schedule(optimizer, config.optim, steps)
    run = Run(
        config,
        options,
        out,
        device,
        dist,
        stop,
        data,
        method,
        method,
        optimizer,
        scheduler,
        Progress(),
        workers,
    )
    if payload is not None:
        restore_checkpoint(run, payload)
    elif dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out / CONFIG_NAME, config)
    distributed.barrier()
    run.model = _wrap(method, device, dist, options)
    run.log = MetricsLog(out, dist.is_main, run.progress.global_step)
    progress = run.progress
    if dist.is_main and options.progress:
        announce(run, resumed=payload is not None)
    if monitor is not None and payload is None:  # the untrained network starts the curve
        start = measured(monitor, method.backbone, "before training", options.progress)
        run.log.write({"event": "monitor", "epoch": 0, **start}, 0, prefix="epoch")
    try:
        while progress.epoch < config.optim.epochs and not progress.stopped:
            ctx = EpochContext(
                progress.epoch,
                device,
                config,
                out,
                data,
                dist=dist,
                log=run.log,
                workers=run.workers,
                step=progress.global_step,
                start_step=progress.step_in_epoch,
                verbose=dist.is_main and options.progress,
                autocast=step_autocast(config.precision, options.amp, device),
                stop_requested=lambda: stop.requested and not dist.enabled,
            )
            started = time.perf_counter()
            try:
                method.on_epoch_start(ctx)
            except StopRequested:  # nothing of this epoch done yet: its start is the state
                save_checkpoint(run)
                return RunResult(progress, "interrupted", method, out)
            draws = method.epoch_data(ctx)
            overhead = time.perf_counter() - started  # e.g. DeepCluster's clustering step
            stopped = train_one_epoch(run, draws, ctx.record, overhead)
            if stopped:
                return RunResult(progress, stopped, method, out)
            ctx.step = progress.global_step
            method.on_epoch_end(ctx)
            if monitor is not None:
                when = f"after epoch {progress.epoch + 1}"
                ctx.record.update(measured(monitor, method.backbone, when, options.progress))
            _end_epoch(run, ctx)
            save_checkpoint(run)
        return RunResult(progress, progress.stopped, method, out)
    finally:
        run.log.close()


def _end_epoch(run: Run, ctx: EpochContext) -> None:
    """Write the epoch's record, move on; a hook's `ctx.stop` finishes the run as --epochs does."""
    progress = run.progress
    record = {"event": "epoch_end", "epoch": progress.epoch + 1, **ctx.record}
    if ctx.stop:
        record["stopped"] = ctx.stop
    run.log.write(record, progress.global_step, prefix="epoch")
    run.scheduler.after_epoch()
    progress.epoch += 1
    progress.step_in_epoch = 0
    progress.stopped = ctx.stop
    progress.finished = progress.epoch >= run.config.optim.epochs or ctx.stop is not None


def train_one_epoch(
    run: Run,
    draws: torch.utils.data.Dataset | None = None,
    record: dict | None = None,
    overhead: float = 0.0,
) -> str | None:
    """One pass over this rank's share of the shards (or of the method's draws for this
    epoch); returns why it stopped early, if so. Puts the epoch's count of unreadable
    samples in `record` (the epoch's record, written by the loop after `on_epoch_end`).
    `overhead`: seconds the epoch's start took, which the projection counts per epoch."""
    config, progress = run.config, run.progress
    loader, steps = _epoch_batches(run, draws)
    autocast = step_autocast(run.config.precision, run.options.amp, run.device)
    run.model.train()
    meter = Meter()
    per_rank = rank_batch_size(config.optim.batch_size, run.dist.world_size)
    bad = BadSamples(config.max_bad_fraction, allowed=config.max_bad_fraction * steps * per_rank)
    left = (config.optim.epochs - progress.epoch) * steps - progress.step_in_epoch
    epochs_after = config.optim.epochs - progress.epoch - 1
    timer = StepTimer(steps, left, overhead=overhead, epochs_after=epochs_after)
    timer = timer if run.dist.is_main else None
    with _progress_bar(run, steps) as bar:
        live = LivePostfix(bar, run.device)
        for batch in loader:
            if batch.encoded is not None:  # --decode gpu
                batch = decode_on_device(batch, run.device)
            bad.check(batch, run.progress.epoch + 1, run.dist)
            output = train_step(run, batch, autocast, steps)
            meter.add({"loss": output.loss, **output.metrics}, len(batch))
            bar.update(1)
            live.update(output.loss, len(batch))
            if timer is not None and (line := timer.tick()):
                tqdm.write(line, file=sys.stderr)
            due = _due(run, steps)
            if due.log:
                stop_voted = _log_point(run, meter, bad.count, bar)
                if stop_voted or due.max_steps:
                    save_checkpoint(run)
                    return "interrupted" if stop_voted else "max_steps"
            if due.checkpoint:
                save_checkpoint(run)
    if record is not None:
        record["bad_samples"] = bad.count
    return None


def _progress_bar(run: Run, steps: int) -> tqdm:
    return tqdm(
        total=steps,
        initial=run.progress.step_in_epoch,
        desc=f"epoch {run.progress.epoch + 1}/{run.config.optim.epochs}",
        unit="step",
        disable=not (run.options.progress and run.dist.is_main),
        dynamic_ncols=True,
    )


class Due(NamedTuple):
    """What the step just taken is due for."""

    log: bool  # a log point, which is also where the ranks vote on stopping
    checkpoint: bool  # a periodic checkpoint (the epoch's last step gets one anyway)
    max_steps: bool  # --max-steps reached: stop with a checkpoint


def _due(run: Run, steps: int) -> Due:
    progress, options = run.progress, run.options
    last = progress.step_in_epoch == steps
    limit = options.max_steps is not None and progress.global_step >= options.max_steps
    save = progress.global_step % options.checkpoint_every == 0 and not last
    local_stop = run.stop.requested and not run.dist.enabled
    log = progress.global_step % options.log_every == 0 or last or save or limit or local_stop
    return Due(log, save, limit)


def _log_point(run: Run, meter: Meter, bad: int, bar: tqdm) -> bool:
    """Write the averaged record and start a new meter; returns whether any rank asked to
    stop (the stop vote)."""
    record, stop_voted = _flush(run, meter, bad)
    shown = {"loss": f"{record['loss']:.3f}", "img_s": f"{record['img_per_s']:.0f}"}
    pretext = run.method.spec.pretext.metric  # what says the method learns, on screen
    if pretext in record:
        shown[pretext] = f"{record[pretext]:.3f}"
    bar.set_postfix(shown)
    run.log.write(record, run.progress.global_step)
    meter.reset()
    return stop_voted


def _epoch_batches(run: Run, draws: torch.utils.data.Dataset | None):
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
            prefetch_factor=PREFETCH_BATCHES if run.workers > 0 else None,
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


def train_step(run: Run, batch: Batch, autocast, steps: int) -> StepOutput:
    """Forward, backward and update on one batch (`steps`: the epoch's steps)."""
    progress = run.progress
    info = StepInfo(
        progress.global_step, run.config.optim.epochs * steps, progress.epoch, run.optimizer
    )
    on_device = batch.to(run.device)
    torch.manual_seed(step_seed(run.config.seed, progress.global_step, run.dist.rank))
    run.scheduler.before_step(progress.global_step)
    with autocast:
        output = run.model(on_device.image, on_device)
    run.optimizer.zero_grad(set_to_none=True)
    output.loss.backward()
    run.method.before_optimizer_step(info)
    run.optimizer.step()
    run.method.after_optimizer_step(info)
    run.progress.step_in_epoch += 1
    run.progress.global_step += 1
    return output


def _flush(run: Run, meter: Meter, bad: int) -> tuple[dict, bool]:
    """Average the meter over ranks, check the loss is finite, count the stop votes (one
    all-reduce for all three)."""
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
        raise TrainingDiverged(
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


def _wrap(method, device, dist, options):
    if use_channels_last(options.channels_last, device.type):
        method.to(memory_format=torch.channels_last)
    model = method
    if dist.enabled:
        model = DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    if options.compile:
        model = torch.compile(model)
    return model
