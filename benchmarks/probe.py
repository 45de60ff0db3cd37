"""Benchmark `sslx probe`: the full protocol on CIFAR-10 at 64 px, cached vs streamed.

Measured side by side in one run, on this machine:

- the cached path end to end, exactly as `sslx probe --random-init --cache-features`
  runs it: all five layers, 36 epochs, on the 45,000 training images of the CIFAR-10
  archive (10% of each class held out, split seed 0), split into feature extraction,
  probe training and evaluation (target: all of it within 10 minutes);
- one probe epoch on a subset, streamed (decode + augment + trunk every epoch) against
  cached (float16 features), which is the speed-up `--cache-features` buys per epoch.

The accuracies it prints are the paper's "Random" row for this setting.

    python benchmarks/probe.py                       # the full protocol (minutes)
    python benchmarks/probe.py --epochs 2            # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from datetime import date
from pathlib import Path

import torch
from torch.utils.data import Subset

from sslx.common.labelled import LabelledSplit, load_labelled
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.networks import random_network
from sslx.probe.report import markdown_table
from sslx.probe.run import probe_network
from sslx.train.model import ModelConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def add_data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=REPO / ".cache/data/cifar10/train",
        help="CIFAR-10 ImageFolder (unpacked from ../shared/data if missing)",
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_data_arg(p)
    p.add_argument("--size", type=int, default=64, help="network input size")
    p.add_argument("--conv1-stride", type=int, default=0, help="0: the default for --size")
    p.add_argument("--epochs", type=int, default=36, help="probe epochs (protocol: 36)")
    p.add_argument("--subset", type=int, default=3000, help="images in the per-epoch comparison")
    p.add_argument("--workers", type=int, default=1, help="decoding processes")
    return p.parse_args()


def ensure_data(path: Path) -> Path:
    if not path.is_dir():
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        archive = SHARED / "cifar10-train.tar.gz"
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(path.parent.parent)], check=True)
    return path


def main() -> None:
    args = parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    data = load_labelled("cifar10", ensure_data(args.data), val_fraction=0.1, split_seed=0)
    net = random_network(ModelConfig(input_size=args.size, conv1_stride=args.conv1_stride), 0)
    options = ProbeOptions(workers=args.workers, quiet=True)
    print(
        f"# sslx probe benchmark, {date.today()}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, torch {torch.__version__}"
    )
    print(
        f"data: {len(data.train)} train / {len(data.val)} val; network: random init, "
        f"{args.size} px, conv1 stride {net.model.config.conv1_stride}\n"
    )

    config = ProbeConfig(epochs=args.epochs, crop_ratio=1.0, cache_features=True)
    t0 = time.perf_counter()
    result = probe_network(net, data, config, options)
    total = time.perf_counter() - t0
    s = result.seconds
    print("## cached path, all 5 layers, the full protocol")
    print("| extract s | train s | evaluate s | total s | total vs 10 min target |")
    print("|---|---|---|---|---|")
    print(
        f"| {s['extract']:.1f} | {s['train']:.1f} | {s['evaluate']:.1f} | {total:.1f} "
        f"| {total / 600:.2f} |\n"
    )
    print(markdown_table([result], "top1") + "\n")

    n = min(args.subset, len(data.train))
    small = LabelledSplit(
        Subset(data.train, range(n)),
        Subset(data.val, range(200)),
        data.classes,
        {**data.info, "subset": n},
    )
    one = {"epochs": 1, "crop_ratio": 1.0}
    t0 = time.perf_counter()
    probe_network(net, small, ProbeConfig(**one), options)
    streamed = time.perf_counter() - t0
    cached = probe_network(net, small, ProbeConfig(**one, cache_features=True), options)
    per_epoch = cached.seconds["train"]
    print(f"## one epoch on {n} images")
    print(
        "| streamed (augmented) s | cached: extract once s | cached: epoch s | "
        "streamed / cached epoch |"
    )
    print("|---|---|---|---|")
    print(
        f"| {streamed:.1f} | {cached.seconds['extract']:.1f} | {per_epoch:.2f} | "
        f"{streamed / per_epoch:.1f} |"
    )


if __name__ == "__main__":
    main()
