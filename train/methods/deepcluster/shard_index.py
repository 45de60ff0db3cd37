"""DeepCluster's random access into the shards: it chooses its own samples each epoch.

The streaming reader (`sslx.train.data.ShardStream`) reads every shard front to back. DeepCluster
instead draws the same number of images from every cluster, so it needs image `i` on
demand. `ShardIndex` loads where each sample's JPEG lies inside its tar shard from the
dataset's `samples.parquet` (shard format version 2; a version 1 dataset is indexed by
reading the tar headers with the stdlib `tarfile`) and then reads it with one `pread`.
WebDataset's own indexed reader, `wids`, is not part of webdataset 1.0 (it is a separate
package that scans the tars the same way and adds a download cache we do not need).

An `EpochDataset` is a map-style dataset of one epoch's draws: draw `i` is sample
`indices[i]` with label `labels[i]`, cropped with the run's train crop whose parameters
are a pure function of (seed, epoch, i), or in the evaluation view (`crop=None`, for
feature extraction); `sslx.train.batches` batches the draws and splits them over ranks.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from sslx.common.crops import CropConfig, draw_crop
from sslx.datagen.samples_table import read_locations
from sslx.datagen.shards import read_manifest
from sslx.errors import InputError, first_line


class ShardIndex:
    """Where every sample's JPEG lies: (shard, byte offset, size), by global index."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        manifest = read_manifest(folder)
        self.patch_size = int(manifest["config"]["size"])
        self.num_samples = int(manifest["num_samples"])
        self.paths = [str(folder / s["name"]) for s in manifest["shards"]]
        self.shard = np.full(self.num_samples, -1, dtype=np.int32)
        self.offset = np.zeros(self.num_samples, dtype=np.int64)
        self.size = np.zeros(self.num_samples, dtype=np.int64)
        table = read_locations(folder, manifest)
        if table is None:
            for j, path in enumerate(self.paths):
                self._scan(j, path)
        else:
            index = table["index"].to_numpy()  # checked against the shards by the reader
            self.shard[index] = table["shard"].to_numpy()
            self.offset[index] = table["jpg_offset"].to_numpy()
            self.size[index] = table["jpg_size"].to_numpy()
        missing = np.flatnonzero(self.shard < 0)
        if len(missing):
            raise InputError(
                f"{len(missing)} sample(s) listed in {folder / 'manifest.json'} have no .jpg "
                f"in the shards, e.g. sample {missing[0]:09d}"
            )
        self._files: dict[int, int] = {}

    def _scan(self, shard: int, path: str) -> None:
        try:
            with tarfile.open(path) as tar:
                for member in tar:
                    key, _, ext = member.name.partition(".")
                    if ext == "jpg" and key.isdigit() and int(key) < self.num_samples:
                        i = int(key)
                        self.shard[i], self.offset[i], self.size[i] = (
                            shard,
                            member.offset_data,
                            member.size,
                        )
        except (OSError, tarfile.TarError) as e:
            raise InputError(f"{path} is not a readable shard: {first_line(e)}") from None

    def read(self, index: int) -> bytes:
        """The JPEG bytes of sample `index` (opened lazily, one descriptor per process)."""
        shard = int(self.shard[index])
        fd = self._files.get(shard)
        if fd is None:
            fd = self._files[shard] = os.open(self.paths[shard], os.O_RDONLY)
        return os.pread(fd, int(self.size[index]), int(self.offset[index]))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_files": {}}  # descriptors do not travel to workers

    def __del__(self) -> None:
        for fd in getattr(self, "_files", {}).values():
            os.close(fd)


class EpochDataset(torch.utils.data.Dataset):
    """One epoch's draws: draw i -> (image uint8 HWC | None, sample index, label, error)."""

    def __init__(
        self,
        shards: ShardIndex,
        indices: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        input_size: int,
        crop: CropConfig | None,
        seed: int = 0,
        epoch: int = 0,
        centre_ratio: float = 1.0,
    ) -> None:
        self.shards = shards
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.zeros_like(self.indices) if labels is None else np.asarray(labels)
        self.input_size = input_size
        self.crop = crop
        self.seed, self.epoch = seed, epoch
        self.centre_ratio = centre_ratio  # crop=None: the evaluation view (see centre_crops)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, int, str | None]:
        index, side = int(self.indices[i]), self.shards.patch_size
        try:
            jpeg = self.shards.read(index)
        except OSError as e:
            return None, index, int(self.labels[i]), f"sample {index:09d}: {e}"
        # Keyed by the draw, so a sample drawn twice gets two different crops.
        image = draw_crop(
            jpeg,
            i,
            size=self.input_size,
            crop=self.crop,
            seed=self.seed,
            epoch=self.epoch,
            shape=(side, side),
            centre_ratio=self.centre_ratio,
        )
        error = None if image is not None else f"sample {index:09d} is not a decodable JPEG"
        return image, index, int(self.labels[i]), error
