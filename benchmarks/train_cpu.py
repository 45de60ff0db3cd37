"""Benchmark CPU speed-ups of `sslx train` at 64 px (issue 18), side by side in one run.

- training steps/s (forward + backward + optimiser step, as the loop does) of BiGAN
  (E + G + D) and RotNet (64 images -> 256 rotated) with the reproduction's 64 px
  settings (`--size 64 --conv1-stride 4 --classifier-width 512`, BiGAN `--gan-width
  32`, batch 64) in these settings: fp32 (the baseline), bf16 autocast, channels_last,
  channels_last + bf16, torch.compile (fp32; compile time apart from the steady rate)
  and the best combination, each at 2 and 1 threads (`--threads`);
- numerics, per setting, from the same init and the same batches: the loss at the first
  and last step, and "update vs fp32", the distance of the weights' total update from
  fp32's relative to the size of fp32's (0 = the same weights; compiled code draws its
  own dropout masks and latents, so its figure also counts different random numbers);
- the loader at 64 px: samples/s of ShardStream with 0, 1 and 2 loader workers against
  the images/s that a fp32 BiGAN and RotNet step consume.

    python benchmarks/train_cpu.py                       # full run, < 10 min on 2 cores
    python benchmarks/train_cpu.py --steps 2 --warmup 1 --threads 1 --no-compile  # smoke
    python benchmarks/train_cpu.py --only loader         # one section

Compiling takes minutes, so compiled settings that would start after `--budget` seconds
(420) are skipped with a line saying so; the run then still ends within 10 minutes.

The batches are real 64 px train crops from the shards of benchmarks/train.py (generated
from the paper's photo if missing), cycled; each step reseeds torch's RNG with its step
number, as the loop does, so every setting sees the same dropout masks and BiGAN latents.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import cv2
import torch

from sslx.common.crops import CropConfig
from sslx.train.batches import Batch, init_loader_worker
from sslx.train.config import TrainConfig
from sslx.train.data import ShardStream
from sslx.train.loop import build_method
from sslx.train.methods.base import Method
from train import add_shard_args, ensure_shards  # benchmarks/train.py

SIZE, BATCH = 64, 64
MODEL = {"input_size": SIZE, "classifier_width": 512, "conv1_stride": 4}
OPTIONS = {"bigan": {"gan_width": 32}, "rotnet": {}}


@dataclass(frozen=True)
class Setting:
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False

    @property
    def name(self) -> str:
        parts = [
            n
            for n, on in (
                ("compile", self.compile),
                ("channels_last", self.channels_last),
                ("bf16", self.bf16),
            )
            if on
        ]
        return " + ".join(parts) or "fp32"


@dataclass(frozen=True)
class Result:
    rate: float  # steady-state steps/s
    compile_s: float  # warm-up time beyond that of as many steady steps (compile only)
    first_loss: float
    last_loss: float
    update: torch.Tensor  # final minus initial trainable parameters, flattened


EAGER = (
    Setting(),
    Setting(bf16=True),
    Setting(channels_last=True),
    Setting(channels_last=True, bf16=True),
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_shard_args(p)
    p.add_argument("--steps", type=int, default=8, help="timed training steps per setting")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compile here)")
    p.add_argument("--threads", default="2,1", help="torch thread counts, comma-separated")
    p.add_argument("--methods", default="bigan,rotnet", help="methods, comma-separated")
    p.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip torch.compile (needs a C++ compiler; minutes)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=420,
        help="seconds after which compiled settings are skipped",
    )
    p.add_argument("--repeats", type=int, default=2, help="loader passes; the best is kept")
    p.add_argument("--only", choices=["train", "loader"], help="run one section")
    return p.parse_args()


def real_batches(shards: Path, count: int) -> list[torch.Tensor]:
    """`count` batches of 64 px train crops, NHWC uint8 as the loader gives them."""
    stream = ShardStream(
        shards, batch_size=BATCH, input_size=SIZE, crop=CropConfig(), seed=0, shuffle_buffer=1000
    )
    stream.set_epoch(0)
    batches = []
    for batch in stream:
        batches.append(batch.image)
        if len(batches) == count:
            break
    return batches


def build(name: str) -> tuple[Method, torch.optim.Optimizer]:
    """The method as `sslx train` builds it (seeded init, the paper's optimiser)."""
    config = TrainConfig.for_method(
        name,
        shards="",
        batch_size=BATCH,
        epochs=1,
        lr_milestones=(),
        lr_gamma=1.0,
        **MODEL,
        **OPTIONS[name],
    )
    method = build_method(config)
    return method, method.configure_optimizer(config.optim)


def run_setting(
    name: str, setting: Setting, batches: list[torch.Tensor], warmup: int, steps: int
) -> Result:
    method, optimizer = build(name)
    if setting.channels_last:
        method.to(memory_format=torch.channels_last)
    model = torch.compile(method) if setting.compile else method
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if setting.bf16 else nullcontext()
    losses: list[float] = []
    params = [p for p in method.parameters() if p.requires_grad]
    initial = [p.detach().clone() for p in params]

    def step(i: int) -> None:
        # NHWC -> NCHW as a view, as the loop's train_step feeds the model.
        images = batches[i % len(batches)].permute(0, 3, 1, 2)
        torch.manual_seed(i)  # same dropout masks and latents in every setting
        with autocast:
            output = model(images, Batch(batches[i % len(batches)], torch.arange(len(images))))
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        losses.append(float(output.loss.detach()))

    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    t1 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    t2 = time.perf_counter()
    rate = steps / (t2 - t1)
    compile_s = max(0.0, (t1 - t0) - warmup / rate) if setting.compile else 0.0
    update = torch.cat([(p.detach() - p0).flatten() for p, p0 in zip(params, initial, strict=True)])
    return Result(rate, compile_s, losses[0], losses[-1], update)


def try_setting(name: str, setting: Setting, args, batches) -> Result | None:
    if setting.compile and time.perf_counter() > args.deadline:
        print(f"| {setting.name} | skipped: past --budget {args.budget:.0f} s | | | | | |")
        return None
    try:
        return run_setting(name, setting, batches, args.warmup, args.steps)
    except Exception as e:  # torch.compile can fail on a machine without a working compiler
        print(
            f"| {setting.name} | failed: {type(e).__name__}: {str(e).splitlines()[0][:120]} "
            "| | | | | |"
        )
        return None


def train_section(args, batches) -> dict[tuple[str, int], float]:
    """One table per thread count and method (all thread counts of the first --threads
    first); returns the fp32 images/s per (method, threads)."""
    consumed = {}
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for name in args.methods.split(","):
            rate = method_table(name, threads, args, batches)
            if rate is not None:
                consumed[name, threads] = rate * BATCH
    return consumed


def method_table(name: str, threads: int, args, batches) -> float | None:
    """Print one method's settings at one thread count; returns the fp32 steps/s."""
    print(
        f"\n## {name}, batch {BATCH}, {threads} thread(s), {args.steps} timed steps "
        f"after {args.warmup} warm-up"
    )
    last = args.warmup + args.steps
    print(
        f"| setting | steps/s | vs fp32 | compile s | loss step 1 | loss step {last} | "
        "update vs fp32 |\n|---|---|---|---|---|---|---|"
    )
    settings = list(EAGER) + ([Setting(compile=True)] if args.compile else [])
    results: dict[Setting, Result] = {}
    for setting in settings:
        result = try_setting(name, setting, args, batches)
        if result is not None:
            results[setting] = result
            _row(setting, result, results)
    best = _best_combination(results)
    if best is not None and best not in results:
        result = try_setting(name, best, args, batches)
        if result is not None:
            results[best] = result
            _row(best, result, results)
    if Setting() not in results:
        return None
    top = max(results, key=lambda s: results[s].rate)
    print(f"best: {top.name}, {results[top].rate / results[Setting()].rate:.2f}x fp32")
    return results[Setting()].rate


def _row(setting: Setting, r: Result, results: dict[Setting, Result]) -> None:
    base = results[Setting()]
    compile_s = f"{r.compile_s:.1f}" if setting.compile else ""
    # How far this setting's weights moved from fp32's, relative to fp32's own move.
    drift = float((r.update - base.update).norm() / base.update.norm().clamp_min(1e-30))
    print(
        f"| {setting.name} | {r.rate:.3f} | {r.rate / base.rate:.2f} | {compile_s} | "
        f"{r.first_loss:.5f} | {r.last_loss:.5f} | {drift:.2g} |"
    )


def _best_combination(results: dict[Setting, Result]) -> Setting | None:
    """The fastest eager setting, compiled too if compiling beat fp32 eager."""
    eager = [s for s in EAGER if s in results]
    if not eager:
        return None
    best = max(eager, key=lambda s: results[s].rate)
    compiled = results.get(Setting(compile=True))
    if compiled is not None and compiled.rate > results[Setting()].rate:
        return replace(best, compile=True)
    return best


def loader_rate(shards: Path, workers: int, repeats: int) -> float:
    """Samples/s over whole epochs through a DataLoader set up as the loop sets it up."""
    stream = ShardStream(
        shards, batch_size=BATCH, input_size=SIZE, crop=CropConfig(), seed=0, shuffle_buffer=5000
    )
    best = 0.0
    for epoch in range(repeats):
        stream.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            stream,
            batch_size=None,
            num_workers=workers,
            worker_init_fn=init_loader_worker,
            prefetch_factor=4 if workers else None,
        )
        t0, n = time.perf_counter(), 0
        for batch in loader:  # worker start-up counted: training pays it every epoch
            n += batch.image.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
    return best


def loader_section(args, shards: Path, consumed: dict[tuple[str, int], float]) -> None:
    torch.set_num_threads(1)  # with 0 workers the main process decodes, like one worker
    keys = sorted(consumed, key=lambda k: (k[0], -k[1]))
    print(
        "\n## loader at 64 px (256 px JPEG patches -> 64 px train crops); a ratio > 1 means "
        "the loader outpaces that fp32 training step, i.e. training is compute-bound"
    )
    head = "".join(f" | vs {name} fp32, {threads} thr" for name, threads in keys)
    print(f"| loader workers | samples/s{head} |\n|---|---{'|---' * len(keys)}|")
    for workers in (0, 1, 2):
        rate = loader_rate(shards, workers, args.repeats)
        ratios = "".join(f" | {rate / consumed[k]:.1f}x" for k in keys)
        print(f"| {workers} | {rate:,.0f}{ratios} |")
    for (name, threads), img_s in sorted(consumed.items()):
        print(f"{name} fp32 at {threads} thread(s) consumes {img_s:.1f} img/s")


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(1)
    flags = [f for f in ("avx512_bf16", "amx_bf16") if f in Path("/proc/cpuinfo").read_text()]
    print(
        f"# sslx CPU speed-ups benchmark, {date.today()}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, CPU flags: "
        f"{', '.join(flags) or 'no avx512_bf16/amx_bf16'}"
    )
    print(
        f"model: {SIZE} px, conv1 stride {MODEL['conv1_stride']}, fc {MODEL['classifier_width']}; "
        f"bigan {OPTIONS['bigan']}; batch {BATCH}"
    )
    started = time.perf_counter()
    args.deadline = started + args.budget
    shards = ensure_shards(args)
    consumed: dict[tuple[str, int], float] = {}
    if args.only in (None, "train"):
        # A fresh inductor cache, so each network's first compile is a cold one.
        with tempfile.TemporaryDirectory(prefix="sslx-inductor-") as cache:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache)
            consumed = train_section(args, real_batches(shards, 4))
    if args.only in (None, "loader"):
        loader_section(args, shards, consumed)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
