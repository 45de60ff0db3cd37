"""Benchmark `sslx probe --eval linear,knn,cluster`: kNN and k-means cluster quality
against the linear probe of the same network, from the same warm feature cache.

One network (random init, or `--checkpoint`), CIFAR-10 at 64 px (45,000 training images
as kNN's memory, 5,000 held out as its queries and as k-means' rows), every tap. The
features are extracted once; then, side by side in this one run, the linear probe's
36 epochs (training + evaluation) and kNN (both settings, one search) and k-means
(3 restarts) on every layer. Targets (issue 26): kNN + k-means within 2 minutes per
network on 2 cores, and at least 10x faster than the linear probe.

    python benchmarks/evaluate.py                                  # random init (minutes)
    python benchmarks/evaluate.py --checkpoint runs/rotnet64       # a trained network
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from probe import add_data_arg, ensure_data  # benchmarks/probe.py, this script's neighbour
from sslx.common.labelled import load_labelled
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.evaluate import evaluate_network
from sslx.probe.networks import checkpoint_network, random_network
from sslx.train.model import ModelConfig


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_data_arg(p)
    p.add_argument("--checkpoint", type=Path, help="a run to evaluate (default: random init)")
    p.add_argument("--size", type=int, default=64, help="random network's input size")
    p.add_argument("--conv1-stride", type=int, default=4, help="random network's conv1 stride")
    p.add_argument("--epochs", type=int, default=36, help="linear probe epochs (protocol: 36)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    data = load_labelled("cifar10", ensure_data(args.data), val_fraction=0.1, split_seed=0)
    if args.checkpoint:
        net = checkpoint_network(args.checkpoint)
    else:
        geometry = ModelConfig(input_size=args.size, conv1_stride=args.conv1_stride)
        net = random_network(geometry, 0)
    print(
        f"# sslx probe --eval benchmark, {date.today()}, {platform.machine()}, {cores} cores, "
        f"torch {torch.__version__}"
    )
    print(f"data: {len(data.train)} train (memory) / {len(data.val)} val (queries); {net.name}\n")
    config = ProbeConfig(
        epochs=args.epochs,
        crop_ratio=1.0,
        ten_crop=False,  # as `sslx probe` on CIFAR (its ten crops: the image and its mirror)
        cache_features=True,
        evals=("linear", "knn", "cluster"),
    )
    with tempfile.TemporaryDirectory() as state:
        t0 = time.perf_counter()
        result = evaluate_network(net, data, config, ProbeOptions(quiet=True), Path(state))
        total = time.perf_counter() - t0
    s = result.seconds
    linear = s["train"] + s["evaluate"]
    fast = s["knn"] + s["cluster"]
    layers = len(result.dims)
    print(f"## {layers} layers, from one warm cache (extraction: {s['extract']:.0f} s, once)")
    print("| linear (train + eval) s | kNN s | k-means s | kNN + k-means s | vs 2 min | speed-up |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {linear:.0f} | {s['knn']:.0f} | {s['cluster']:.1f} | {fast:.0f} | {fast / 120:.2f} "
        f"| {linear / fast:.1f}x |"
    )
    print(f"\nwhole run {total:.0f} s")
    for layer in result.dims:
        knn = result.knn[layer]
        cells = ", ".join(f"{k} {v['top1']:.3f}" for k, v in knn.items())
        print(
            f"- {layer}: linear top-1 {result.top1[layer]:.3f}; kNN {cells}; "
            f"NMI {result.cluster[layer]['nmi']:.3f}"
        )


if __name__ == "__main__":
    main()
