"""`sslx train --monitor DIR`: the weighted kNN top-1 of every tap on a small, fixed
labelled set, before the first step and after every epoch, so a run shows its features
improving or collapsing while it trains (metrics.jsonl and TensorBoard).

The measure is the probe's `--eval knn` at DINO's default (k = 20, T = 0.07) on the same
pooled taps (`sslx.train.taps`), at a smaller scale: `--monitor-images` images of DIR,
class-balanced, four fifths from the probe's training split (the kNN memory) and one
fifth from its validation split (the queries), split as `sslx probe` splits by default
(CIFAR pickles: their test split; otherwise 0.1 of each class, split seed 0). The picks
come from the "monitor" seed stream at seed 0, not the run's seed, so every run is
measured on the same images and two runs' curves compare.

The images are decoded once, in the evaluation view (`LabelledViews`), and kept as uint8.
Measuring runs the backbone in eval mode without gradients and draws no random number,
so a run trains the same with or without a monitor.

Memory, with M monitor images at S px and D_l the pooled width of tap l: M * 3 * S^2 bytes
for the images, and during a measurement M * sum(D_l) * 2 bytes (every tap's features as
float16) plus `nearest`'s search of one tap.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from sslx import seeds
from sslx.common.batching import in_order
from sslx.common.datasets import eval_crop_ratio
from sslx.common.knn import KNN_SETTINGS, knn_accuracies
from sslx.common.labelled import LabelledViews, load_labelled, split_labels
from sslx.errors import InputError
from sslx.train.backbone import Backbone
from sslx.train.config import RunOptions
from sslx.train.evaluation import evaluating
from sslx.train.model import ModelConfig
from sslx.train.taps import TapPooling

SETTING = KNN_SETTINGS[0]  # DINO's default: 20 neighbours at T = 0.07
QUERY_SHARE = 5  # one monitor image in five is a query
BATCH = 256  # images per forward pass of a measurement


def record_key(layer: str) -> str:
    """A tap's key in the epoch records of metrics.jsonl (TensorBoard: epoch/<key>)."""
    return f"monitor_knn_top1_{layer}"


def balanced_pick(labels: torch.Tensor, count: int, key: int) -> list[int]:
    """`count` positions of `labels`, as even over the classes as their sizes allow: each
    class contributes the start of its own seeded permutation ("monitor" stream, seed 0,
    keys (key, class)), and a class that runs out leaves its share to the others."""
    members = {}
    for label in labels.unique().tolist():
        index = (labels == label).nonzero().flatten()
        order = seeds.rng(0, "monitor", key, label).permutation(len(index))
        members[label] = index[torch.from_numpy(order)].tolist()
    taken = {label: 0 for label in members}
    picked: list[int] = []
    while len(picked) < count and any(taken[c] < len(m) for c, m in members.items()):
        for label, index in members.items():  # one per class per round, in class order
            if len(picked) < count and taken[label] < len(index):
                picked.append(index[taken[label]])
                taken[label] += 1
    return sorted(picked)


class Monitor:
    """The monitor set of one run, decoded; `measure` gives each tap's kNN top-1."""

    def __init__(self, root: Path, dataset: str, images: int, model: ModelConfig) -> None:
        data = load_labelled(dataset, Path(root))
        if len(data.classes) < 2:
            raise InputError(
                f"--monitor {root} has one class ({data.classes[0]}); kNN accuracy needs two "
                "or more class folders"
            )
        k = SETTING[0]
        queries = max(images // QUERY_SHARE, 1)
        if images - queries < k:
            raise InputError(
                f"--monitor-images {images} leaves {images - queries} memory images, fewer "
                f"than the kNN's {k} neighbours; use {k + k // (QUERY_SHARE - 1) + 1} or more"
            )
        self.model = model.resolved()
        self.classes = len(data.classes)
        ratio = eval_crop_ratio(dataset)
        self.memory, self.memory_labels = self._decode(data.train, images - queries, 0, ratio)
        self.queries, self.query_labels = self._decode(data.val, queries, 1, ratio)
        if len(self.memory) < k:
            raise InputError(
                f"--monitor {root}: its training split has {len(self.memory)} images, fewer "
                f"than the kNN's {k} neighbours"
            )
        self.pooling = TapPooling(self.model, self.model.layers)

    def _decode(self, split, count: int, key: int, ratio: float):
        size = self.model.input_size
        labels = torch.from_numpy(split_labels(split))
        picked = balanced_pick(labels, count, key)
        views = LabelledViews(Subset(split, picked), input_size=size, centre_ratio=ratio)
        images = torch.empty((len(picked), 3, size, size), dtype=torch.uint8)
        for i in range(len(views)):
            pixels = views[i][0]
            if pixels is None:
                raise InputError(f"--monitor: image {picked[i]} of the split is unreadable")
            images[i] = torch.from_numpy(pixels).permute(2, 0, 1)
        return images, labels[picked]

    @torch.no_grad()
    def _features(self, backbone: Backbone, images: torch.Tensor) -> dict[str, torch.Tensor]:
        device = next(backbone.parameters()).device
        out: dict[str, list[torch.Tensor]] = {layer: [] for layer in self.model.layers}
        for batch in in_order(len(images), BATCH):
            x = images[batch[0] : batch[-1] + 1].to(device)
            pooled = self.pooling.to(device)(backbone.taps(x, self.model.layers))
            for layer, f in pooled.items():
                out[layer].append(f.half())  # the feature cache's precision
        return {layer: torch.cat(parts) for layer, parts in out.items()}

    def measure(self, backbone: Backbone) -> dict[str, float]:
        """kNN top-1 (a fraction) of each tap, keyed by `record_key`, on the backbone's
        device, in eval mode (its BatchNorm statistics are used, not updated)."""
        with evaluating(backbone):
            memory = self._features(backbone, self.memory)
            queries = self._features(backbone, self.queries)
        out = {}
        for layer in self.model.layers:
            found = knn_accuracies(
                memory[layer],
                self.memory_labels,
                queries[layer],
                self.query_labels,
                self.classes,
                (SETTING,),
            )
            out[record_key(layer)] = found[SETTING]["top1"]
        return out


def open_monitor(options: RunOptions, model: ModelConfig, is_main: bool) -> Monitor | None:
    """The run's monitor (read and decoded now, so bad data fails before any training), on
    the main rank only: the other ranks need no copy of the set."""
    if not options.monitor or not is_main:
        return None
    return Monitor(Path(options.monitor), options.monitor_dataset, options.monitor_images, model)


def measured(monitor: Monitor, backbone: Backbone, when: str, verbose: bool) -> dict[str, float]:
    """`monitor.measure`, said in one stderr line if `verbose`:
    `sslx: monitor kNN top-1 after epoch 2: conv1 0.412, ..., conv5 0.305 (2.1 s)`."""
    started = time.perf_counter()
    values = monitor.measure(backbone)
    if verbose:
        cells = ", ".join(f"{k.removeprefix(record_key(''))} {v:.3f}" for k, v in values.items())
        took = time.perf_counter() - started
        print(f"sslx: monitor kNN top-1 {when}: {cells} ({took:.1f} s)", file=sys.stderr)
    return values
