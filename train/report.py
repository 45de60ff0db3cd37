"""What a run tells a person while it runs: a start-up summary, a hint when CPU settings
are slow, live loss and img/s from the first step, and a projected time after a few steps.

Shared by `sslx train` and `sslx probe`; it only formats and measures, it never changes
what a run computes.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from sslx.train.batches import steps_per_epoch
from sslx.train.model import ModelConfig
from sslx.train.precision import arithmetic_text, slow_bf16_note, use_channels_last

if TYPE_CHECKING:
    from sslx.train.state import Run

# On CUDA, reading the loss is a device sync: the live postfix reads it every this many steps.
CUDA_POSTFIX_EVERY = 20


def startup_summary(
    *,
    device: torch.device,
    world_size: int,
    batch_size: int,
    workers: int,
    steps: int | None,
    epochs: int,
    samples: int,
    arithmetic: str | None = None,
) -> str:
    """One line saying where and how a run trains, before its first step (`batch_size` is
    the global batch, as everywhere in train/)."""
    threads = torch.get_num_threads() if device.type == "cpu" else None
    where = f"device {device}" + (f", {threads} torch threads" if threads else "")
    per_epoch = "steps per epoch set by the method" if steps is None else f"{steps} steps/epoch"
    return (
        f"sslx: {where}, {world_size} rank(s), global batch {batch_size} "
        f"({batch_size // world_size} per rank), {workers} loader worker(s), {per_epoch}, "
        f"{epochs} epoch(s), {samples} samples" + (f", {arithmetic}" if arithmetic else "")
    )


def slow_cpu_hint(device: torch.device, model: ModelConfig) -> str | None:
    """A one-time note when a CPU run uses settings that make it very slow, with the faster
    choice. At 64 px, conv1 stride 4 and fc width 512 is about 5x faster (docs/benchmarks.md)."""
    if device.type != "cpu":
        return None
    m = model.resolved()
    if m.input_size >= 128:
        return (
            f"sslx: note: {m.input_size} px on CPU is very slow (hours per 10k patches); "
            "for a CPU run try --size 64 --conv1-stride 4 --classifier-width 512"
        )
    if m.input_size >= 64 and m.conv1_stride <= 2 and m.classifier_width >= 4096:
        return (
            f"sslx: note: conv1 stride {m.conv1_stride} with fc width {m.classifier_width} is "
            "slow on CPU; --conv1-stride 4 --classifier-width 512 is about 5x faster at 64 px"
        )
    return None


def milestone_note(milestones: tuple[int, ...], epochs: int) -> str | None:
    """LR milestones past the last epoch are kept in config.yaml (a resume with more
    --epochs uses them) but do nothing in this run: say so once."""
    beyond = [m for m in milestones if m >= epochs]
    if not beyond:
        return None
    return (
        f"sslx: note: LR milestone(s) {','.join(map(str, beyond))} are at or past --epochs "
        f"{epochs}: kept in config.yaml for a longer resume, no effect in this run"
    )


class LivePostfix:
    """Keeps a progress bar's loss and img/s current from the first step: every step on CPU,
    every `CUDA_POSTFIX_EVERY` steps on CUDA (reading the loss waits for the device)."""

    def __init__(self, bar, device: torch.device) -> None:
        self.bar = bar
        self.every = CUDA_POSTFIX_EVERY if device.type == "cuda" else 1
        self.steps = 0
        self.images = 0
        self.last = time.perf_counter()

    def update(self, loss: torch.Tensor, images: int) -> None:
        self.steps += 1
        self.images += images
        if self.bar.disable or self.steps % self.every:
            return
        now = time.perf_counter()
        rate = self.images / (now - self.last) if now > self.last else 0.0
        self.bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{rate:.0f}")
        self.images, self.last = 0, now


def announce(run: Run, resumed: bool = False) -> None:
    """The start-up summary (and a hint when CPU settings are slow), before the first step;
    a resumed run first says where it continues."""
    o = run.config.optim
    if resumed:  # said once the run folder is held and its log readable
        at, steps = run.progress, steps_per_epoch(run.data.num_samples, o.batch_size)
        tqdm.write(
            f"sslx: resuming {run.out}: epoch {at.epoch + 1} of {o.epochs}, after step "
            f"{at.step_in_epoch} of {steps} (global step {at.global_step})",
            file=sys.stderr,
        )
    steps, samples = getattr(run.data, "steps", None), run.data.num_samples
    layout = dict(world_size=run.dist.world_size, batch_size=o.batch_size, workers=run.workers)
    layout["arithmetic"] = arithmetic_text(
        run.config.precision,
        run.options.amp,
        use_channels_last(run.options.channels_last, run.device.type),
        run.device.type,
    )
    for line in (
        startup_summary(device=run.device, steps=steps, epochs=o.epochs, samples=samples, **layout),
        slow_cpu_hint(run.device, run.config.model),
        slow_bf16_note(run.config.precision, run.device.type),
        milestone_note(o.lr_milestones, o.epochs),
    ):
        if line:
            tqdm.write(line, file=sys.stderr)
