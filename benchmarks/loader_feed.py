"""Can the CPU loader feed a GPU? samples/s of one loader worker (one thread, read + decode
+ every view's crop, flip and colour work + batch) for each method's views at 224 px from
the paper's 256 px patches, against OpenCV's decode alone, and the workers a GPU needs.

    python benchmarks/loader_feed.py                       # shards of benchmarks/train.py
    python benchmarks/loader_feed.py --gpu-rate 20000      # the step rate to feed, img/s

The arithmetic: a GPU that trains R samples/s needs 1.5 R from the loader (headroom for
uneven batches), so ceil(1.5 R / rate) workers of one core each; a 16-core machine has 15.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from datetime import date

import cv2
import torch

from sslx.common.crops import CropConfig
from sslx.train.config import TrainConfig
from sslx.train.data import ShardStream
from sslx.train.loop import build_method
from train import add_shard_args, decode_bound, ensure_shards  # benchmarks/train.py

METHODS = ("rotnet", "simclr", "byol", "dino")  # one view; two; two with solarisation; multi-crop


def worker_rate(shards, method: str, size: int, samples: int) -> tuple[float, str]:
    """Samples/s of one worker's stream for `method`'s views, and the views in words."""
    config = TrainConfig.for_method(method, shards=str(shards), input_size=size)
    views = build_method(config).views(CropConfig(), size)
    stream = ShardStream(
        shards, batch_size=64, input_size=size, crop=CropConfig(), shuffle_buffer=1000, views=views
    )
    stream.set_epoch(0)
    t0, n = time.perf_counter(), 0
    for batch in stream:
        n += len(batch.index)
        if n >= samples:
            break
    sides = [v.size for v in views] or [size]
    words = " + ".join(f"{sides.count(s)} x {s}" for s in sorted(set(sides), reverse=True))
    return n / (time.perf_counter() - t0), words


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_shard_args(p)
    p.add_argument("--samples", type=int, default=3000, help="samples timed per method")
    p.add_argument("--size", type=int, default=224, help="view side in pixels")
    p.add_argument("--gpu-rate", type=float, default=20_000, help="samples/s the GPU trains")
    p.add_argument("--cores", type=int, default=15, help="loader workers the machine has")
    args = p.parse_args()
    torch.set_num_threads(1)  # as in a loader worker
    cv2.setNumThreads(1)
    shards = ensure_shards(args)
    bound = decode_bound(shards, args.samples, 1)
    need = 1.5 * args.gpu_rate
    print(f"# loader feed, {date.today()}, {platform.machine()}, one worker on one thread")
    print(
        f"\nOpenCV decode alone: {bound:,.0f} samples/s. To feed {args.gpu_rate:,.0f} "
        f"samples/s with 1.5x headroom: {need:,.0f} samples/s.\n"
    )
    print(
        "| method | views | samples/s per worker | vs decode | workers needed "
        f"| {args.cores} workers give | feeds it? |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for method in METHODS:
        rate, views = worker_rate(shards, method, args.size, args.samples)
        workers = math.ceil(need / rate)
        print(
            f"| {method} | {views} | {rate:,.0f} | {rate / bound:.2f} | {workers} "
            f"| {args.cores * rate:,.0f} | {'yes' if workers <= args.cores else 'no'} |"
        )


if __name__ == "__main__":
    main()
