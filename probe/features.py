"""Pooled conv features of a frozen network: streamed per batch, or extracted once and cached
(`NetworkCaches`: a network's caches, shared by the linear probe and kNN / k-means).

Both paths yield the same thing, `(features, labels)` with features a dict layer -> N x D,
and both walk the training set in the same seeded batches (`epoch_batches`), so the probes
cannot tell them apart except through augmentation and float16 rounding.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from sslx import seeds
from sslx.atomic import atomic_write, write_text_atomic
from sslx.common.batching import in_order
from sslx.common.device import PREFETCH_BATCHES
from sslx.common.labelled import LabelledSplit
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.data import Transformed, eval_transform
from sslx.probe.plan import cache_bytes, check_cache_fits
from sslx.train.backbone import Backbone
from sslx.train.taps import TapPooling, probe_shapes

if TYPE_CHECKING:
    from sslx.probe.run import Network

Batch = tuple[dict[str, torch.Tensor], torch.Tensor]


class FrozenTrunk(nn.Module):
    """The network in eval mode without gradients, plus the per-tap pooling."""

    def __init__(self, model: Backbone, layers) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.layers = tuple(layers)
        self.pooling = TapPooling(model.config, self.layers)
        self.shapes = probe_shapes(model.config, self.layers)
        self.dims = {n: c * h * w for n, (c, h, w) in self.shapes.items()}

    def train(self, mode: bool = True) -> FrozenTrunk:
        return super().train(False)  # BatchNorm statistics stay frozen whatever the caller does

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dim() == 5:  # N x crops x 3 x S x S -> (N * crops) x 3 x S x S
            images = images.flatten(0, 1)
        return self.pooling(self.model.taps(images, self.layers))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """A seeded shuffle of range(n) cut into batches. A last batch shorter than half a batch
    joins the one before it: the probes' BatchNorm normalises with the batch's statistics,
    and a tail of a few samples gives degenerate ones (two samples make every feature +-1)
    and one huge step that the loss never recovers from (docs/probe.md). A lone batch of
    one is dropped (BatchNorm cannot train on a single sample)."""
    generator = torch.Generator().manual_seed(seeds.int_seed(seed, "probe", epoch, 0))
    order = torch.randperm(n, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and 2 * len(batches[-1]) < batch_size:
        tail = batches.pop()
        batches[-1] = batches[-1] + tail
    return [b for b in batches if len(b) > 1]


def trunk_features(trunk: FrozenTrunk, images: torch.Tensor, bf16: bool) -> dict:
    """The trunk's pooled taps, in bf16 autocast if asked (the GPU's fast path), returned
    in float32: the probes' BatchNorm wants float32."""
    if not bf16:
        return trunk(images)
    with torch.autocast(images.device.type, dtype=torch.bfloat16):
        pooled = trunk(images)
    return {n: f.float() for n, f in pooled.items()}


def stream_batches(
    trunk: FrozenTrunk,
    dataset: Dataset,
    batches: list[list[int]],
    workers: int,
    device: torch.device,
) -> Iterator[Batch]:
    """Decode, transform and run the trunk batch by batch (bf16 autocast on CUDA). A new
    loader per pass: persistent workers would keep their RNG across epochs, and a resumed
    epoch must draw the same crops as an uninterrupted one."""
    cuda = device.type == "cuda"
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        persistent_workers=False,
        pin_memory=cuda,
        prefetch_factor=PREFETCH_BATCHES if workers > 0 else None,
    )
    for images, labels in loader:
        images = images.to(device, non_blocking=True)
        yield trunk_features(trunk, images, bf16=cuda), labels.to(device, non_blocking=True)


@dataclass
class FeatureCache:
    """Pooled features of a whole dataset in float16: rows i*crops .. i*crops+crops-1 are
    sample i's crops. Held in memory, or in memory-mapped files under a cache folder."""

    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    crops: int = 1

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batches: list[list[int]], device: torch.device) -> Iterator[Batch]:
        offsets = torch.arange(self.crops)
        for batch in batches:
            index = torch.as_tensor(batch)
            rows = (index[:, None] * self.crops + offsets).flatten()
            # One gather per layer, then float32 on the device (BatchNorm wants float32).
            features = {
                n: f.index_select(0, rows).to(device, torch.float32)
                for n, f in self.features.items()
            }
            yield features, self.labels[index].to(device)


def _memmap(path: Path, rows: int, dim: int, mode: str) -> np.memmap:
    return np.memmap(path, dtype=np.float16, mode=mode, shape=(rows, dim))


def _fingerprint(path: Path) -> dict:
    """Size and a hash of the first and last MiB: catches truncation, zero-filling and
    most overwrites without reading a 100 GB cache."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return {"bytes": size, "ends_sha256": digest.hexdigest()}


def _cache_files(cache_dir: Path, name: str, key: dict) -> dict[str, Path]:
    files = {layer: cache_dir / f"{name}-{layer}.f16" for layer in key["dims"]}
    return {**files, "labels": cache_dir / f"{name}-labels.pt"}


def _open_cache(cache_dir: Path, name: str, key: dict) -> FeatureCache | None:
    """A complete, undamaged cache written earlier for the same network and data, or None
    (a damaged one is reported and rebuilt, never used)."""
    marker = cache_dir / f"{name}.json"
    if not marker.is_file():
        return None
    try:
        stored = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return _damaged(marker, "its marker is unreadable")
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None  # another network, data or version of the cache: rebuild quietly
    rows = key["n"] * key["crops"]
    files = _cache_files(cache_dir, name, key)
    for part, path in files.items():
        expected = stored.get("files", {}).get(part)
        if not path.is_file():
            return _damaged(path, "missing")
        if part != "labels" and path.stat().st_size != rows * key["dims"][part] * 2:
            return _damaged(path, "wrong size")
        if _fingerprint(path) != expected:
            return _damaged(path, "changed since it was written")
    try:
        labels = torch.load(files["labels"], weights_only=True)
    except Exception:  # torch raises many types (EOFError, UnpicklingError, ...) for damage
        return _damaged(files["labels"], "unreadable")
    if not isinstance(labels, torch.Tensor) or labels.shape != (key["n"],):
        return _damaged(files["labels"], "wrong shape")
    with warnings.catch_warnings():  # read-only maps: torch warns that they are not writable
        warnings.simplefilter("ignore", UserWarning)
        features = {
            layer: torch.from_numpy(_memmap(files[layer], rows, dim, "r"))
            for layer, dim in key["dims"].items()
        }
    return FeatureCache(features, labels, key["crops"])


def _damaged(path: Path, reason: str) -> None:
    print(
        f"sslx: warning: feature cache {path} is damaged ({reason}); rebuilding it", file=sys.stderr
    )
    return None


def extract_features(
    trunk: FrozenTrunk,
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    device: torch.device,
    crops: int = 1,
    cache_dir: Path | None = None,
    name: str = "features",
    fingerprint: str = "",
    progress: bool = True,
) -> FeatureCache:
    """Run the trunk once over `dataset` (no augmentation: its transform is the eval one).

    With `cache_dir` the features go to memory-mapped float16 files there, and a marker
    written last makes a rerun with the same `fingerprint` reuse them instead."""
    n = len(dataset)
    key = {"n": n, "crops": crops, "dims": dict(trunk.dims), "fingerprint": fingerprint}
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached = _open_cache(cache_dir, name, key)
        if cached is not None:
            return cached
        (cache_dir / f"{name}.json").unlink(missing_ok=True)
    maps = {
        layer: _memmap(cache_dir / f"{name}-{layer}.f16", n * crops, dim, "w+")
        for layer, dim in trunk.dims.items()
        if cache_dir is not None
    }
    features = {
        layer: torch.from_numpy(maps[layer])
        if maps
        else torch.empty((n * crops, dim), dtype=torch.float16)
        for layer, dim in trunk.dims.items()
    }
    labels = torch.empty(n, dtype=torch.long)
    row = 0
    batches = in_order(n, batch_size)
    stream = stream_batches(trunk, dataset, batches, workers, device)
    bar = tqdm(stream, total=len(batches), desc=f"extract {name}", disable=not progress)
    for batch, (pooled, batch_labels) in zip(batches, bar, strict=True):
        labels[batch[0] : batch[-1] + 1] = batch_labels.cpu()
        rows = len(batch) * crops
        for layer, f in pooled.items():
            features[layer][row : row + rows] = f.to("cpu", torch.float16)
        row += rows
    if cache_dir is not None:
        for m in maps.values():
            m.flush()  # on disk before the marker that says the cache is complete
        with atomic_write(cache_dir / f"{name}-labels.pt", "wb") as f:
            torch.save(labels, f)
        files = {p: _fingerprint(f) for p, f in _cache_files(cache_dir, name, key).items()}
        write_text_atomic(cache_dir / f"{name}.json", json.dumps({"key": key, "files": files}))
    return FeatureCache(features, labels, crops)


# What a network's cached features depend on besides the network and the data: the
# evaluation transform and the extraction's batches.
FEATURE_SETTINGS = ("crop_ratio", "ten_crop", "batch_size")


def features_key(network: Network, data: LabelledSplit, config: ProbeConfig) -> dict:
    """What a network's feature cache is made from (its marker on disk, the kNN and
    cluster states)."""
    chosen = {k: getattr(config, k) for k in FEATURE_SETTINGS}
    return {"network": network.source, "data": data.info, "features": chosen}


class NetworkCaches:
    """One network's feature caches (`extract_features`: float16, no augmentation), each
    split extracted at most once in a run, so that the linear probe's --cache-features and
    kNN / k-means share them. `options` are `sslx.probe.run.resolved`'s."""

    def __init__(
        self,
        network: Network,
        data: LabelledSplit,
        config: ProbeConfig,
        options: ProbeOptions,
        cache_dir: Path | None = None,
    ) -> None:
        self.network, self.data, self.config, self.options = network, data, config, options
        self.cache_dir = cache_dir  # this network's memory-mapped files (--cache-dir), or None
        self.splits: dict[str, FeatureCache] = {}
        self.seconds = 0.0  # spent extracting

    def get(self, trunk: FrozenTrunk, names: tuple[str, ...], why: str) -> list[FeatureCache]:
        """The caches of `names` ("train", "val"; val with ten crops if `ten_crop`), those
        not yet extracted checked against the free memory or disk first (`why` is the
        flag that needs them, for that message)."""
        config, options = self.config, self.options
        size = self.network.model.config.input_size
        crops = 10 if config.ten_crop else 1
        parts = {
            "train": (self.data.train, eval_transform(size, config.crop_ratio), 1),
            "val": (self.data.val, eval_transform(size, config.crop_ratio, config.ten_crop), crops),
        }
        missing = [n for n in names if n not in self.splits]
        if not missing:
            return [self.splits[n] for n in names]
        images = {n: len(parts[n][0]) if n in missing else 0 for n in parts}
        needed = cache_bytes(images["train"], images["val"], dict(trunk.dims), crops)
        check_cache_fits(needed, self.cache_dir, why)
        key = json.dumps(features_key(self.network, self.data, config), sort_keys=True, default=str)
        t0 = time.perf_counter()
        for name in missing:
            dataset, transform, n_crops = parts[name]
            self.splits[name] = extract_features(
                trunk,
                Transformed(dataset, transform),
                batch_size=config.batch_size,
                workers=options.workers,
                device=torch.device(options.device),
                crops=n_crops,
                cache_dir=self.cache_dir,
                name=name,
                fingerprint=key,
                progress=options.progress,
            )
        self.seconds += time.perf_counter() - t0
        return [self.splits[n] for n in names]
