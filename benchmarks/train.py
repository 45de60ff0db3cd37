"""Benchmark `sslx train`: the shard loader against the plain decode bound, and RotNet steps.

Measured side by side in one run, on this machine:

- loader: samples/s of one loader worker (read + decode + crop + flip + batch, run in
  this process on one thread) at 224 and 64 px, against decoding the same JPEG bytes
  with OpenCV and nothing else;
- training: RotNet steps/s (4 rotations per image) at 64 and 224 px with the paper's
  4096-wide classifier and a narrow one, on synthetic batches, so only compute counts;
- BiGAN steps/s (E, G and D together) with G and D at 64 px and E at 64 or 128 px, on
  synthetic batches.

    python benchmarks/train.py                     # shards from the paper's photo, 256 px
    python benchmarks/train.py --steps 3           # quicker, noisier
    python benchmarks/train.py --only bigan        # one section

The CPU speed-ups of issue 18 (bf16 autocast, channels_last, torch.compile, and the
loader against the model at 64 px) are measured by benchmarks/train_cpu.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import tarfile
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import torch

from sslx.common.crops import CropConfig
from sslx.datagen import AugmentConfig, GenerateConfig, generate
from sslx.train.batches import Batch
from sslx.train.config import TrainConfig
from sslx.train.data import ShardStream
from sslx.train.loop import build_method
from sslx.train.model import ModelConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SSLX_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_IMAGE = SHARED_DATA / "images" / "ameyoko.jpg"


def add_shard_args(p: argparse.ArgumentParser) -> None:
    """The shard options both training benchmarks share (train_cpu.py imports this)."""
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="source photo")
    p.add_argument(
        "--shards",
        type=Path,
        default=REPO / ".cache" / "bench-train-shards",
        help="shard folder (generated from --image if missing)",
    )
    p.add_argument("--n", type=int, default=6000, help="patches to generate if needed")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_shard_args(p)
    p.add_argument("--batch-size", type=int, default=64, help="images per training step")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per setting")
    p.add_argument("--repeats", type=int, default=2, help="loader repeats; the best is kept")
    p.add_argument("--only", choices=["loader", "rotnet", "bigan"], help="run one section")
    return p.parse_args()


def ensure_shards(args: argparse.Namespace) -> Path:
    if not (args.shards / "manifest.json").exists():
        config = GenerateConfig(
            n=args.n, size=256, seed=0, jpeg_quality=90, shard_size=1000, augment=AugmentConfig()
        )
        generate(config, [args.image], args.shards, workers=2, progress=False)
    return args.shards


def decode_bound(shards: Path, n: int, repeats: int) -> float:
    with tarfile.open(next(iter(sorted(shards.glob("shard-*.tar"))))) as tar:
        jpegs = [tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".jpg")]
    jpegs = jpegs[:n]
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for j in jpegs:
            cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)
        best = max(best, len(jpegs) / (time.perf_counter() - t0))
    return best


def loader_rate(shards: Path, size: int, repeats: int) -> float:
    stream = ShardStream(
        shards, batch_size=64, input_size=size, crop=CropConfig(), seed=0, shuffle_buffer=1000
    )
    best = 0.0
    for epoch in range(repeats):
        stream.set_epoch(epoch)
        t0, n = time.perf_counter(), 0
        for batch in stream:
            n += batch.image.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
    return best


def _images(batch: int, size: int) -> tuple[torch.Tensor, Batch]:
    """Random uint8 images (b, 3, S, S) and their batch, as a step gets them."""
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    return images, Batch(images.permute(0, 2, 3, 1), torch.arange(batch))


def train_rate(size: int, width: int, stride: int, batch: int, steps: int) -> float:
    config = TrainConfig.for_method(
        "rotnet", shards="", input_size=size, classifier_width=width, conv1_stride=stride
    )
    method = build_method(config)
    opt = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)
    images, records = _images(batch, size)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        method(images, records).loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def bigan_rate(size: int, batch: int, steps: int) -> float:
    """Steps/s of BiGAN with the paper's settings: G and D at 64 px, E at `size` px."""
    config = TrainConfig.for_method(
        "bigan",
        shards="",
        input_size=size,
        batch_size=batch,
        epochs=1,
        lr_milestones=(),
        lr_gamma=1.0,
    )
    method = build_method(config)
    opt = method.configure_optimizer(config.optim)
    images, records = _images(batch, size)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        method(images, records).loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(1)
    print(
        f"# sslx train benchmark, {date.today()}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, torch {torch.__version__}"
    )
    if args.only in (None, "loader"):
        shards = ensure_shards(args)
        print(f"shards: {shards} (256 px JPEG q90)\n")
        torch.set_num_threads(1)
        bound = decode_bound(shards, 1000, args.repeats)
        print("## loader, one worker (one thread)")
        print(
            f"| setting | samples/s | vs decode bound |\n|---|---|---|\n"
            f"| OpenCV decode only (bound) | {bound:,.0f} | 1.00 |"
        )
        for size in (224, 64):
            rate = loader_rate(shards, size, args.repeats)
            print(f"| loader, {size} px crops | {rate:,.0f} | {rate / bound:.2f} |")
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    if args.only in (None, "rotnet"):
        print(
            f"\n## RotNet training, batch {args.batch_size} images (x4 rotations), "
            f"{torch.get_num_threads()} threads"
        )
        print("| input | conv1 stride | classifier | steps/s | images/s |\n|---|---|---|---|---|")
        for size, stride in ((64, 2), (64, 4), (224, 4)):
            for width in (4096, 512):
                rate = train_rate(size, width, stride, args.batch_size, args.steps)
                print(
                    f"| {size} | {stride} | {width} | {rate:.3f} | {rate * args.batch_size:.1f} |"
                )
    if args.only in (None, "bigan"):
        print(
            f"\n## BiGAN training (E + G + D), batch {args.batch_size} images, "
            f"{torch.get_num_threads()} threads"
        )
        print("| E input (conv1 stride) | G/D | steps/s | images/s |\n|---|---|---|---|")
        for size in (64, 128):
            rate = bigan_rate(size, args.batch_size, args.steps)
            stride = ModelConfig(input_size=size).resolved().conv1_stride
            print(f"| {size} ({stride}) | 64 | {rate:.3f} | {rate * args.batch_size:.1f} |")


if __name__ == "__main__":
    main()
