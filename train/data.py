"""Streaming the generate stage's shards into training batches (timm's WebDataset habits).

`batch_size` is the global batch B (the paper's number), split evenly over the W ranks:
each rank trains on b = B / W images per step, so a command takes the same steps with
the same images per step on any rank count. Each epoch the shards are permuted from
(seed, epoch) and laid end to end. Rank r of W takes a contiguous stretch of that
sequence, `steps * b` samples long, and splits it into contiguous stretches for its
loader workers, so every sample is seen at most once per epoch across all ranks and
workers, and every rank runs the same number of steps (`steps = num_samples // B`; the
remainder, fewer than one global batch, is dropped, a different set each epoch). A
stretch is a list of shard pieces (a shard, samples to skip, samples to take), read with
WebDataset's tar reader, passed through a bounded shuffle buffer seeded from (seed,
epoch, rank, worker), grouped into batches and only then decoded, so skipping batches on
resume costs no decoding.

The DataLoader takes batches from its workers in turn, so batch j of an epoch comes from
worker j mod K: the order is exact for a given rank count and worker count, and a resume
at step s restarts each worker after the batches it had already delivered.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import webdataset as wds

from sslx import seeds
from sslx.common.batching import rank_share
from sslx.common.crops import (
    CropConfig,
    decode_rgb,
    draw_crop,
    jpeg_size,
    render_crop,
    sample_crops,
)
from sslx.common.views import ViewSpec, draw_view
from sslx.datagen.shards import read_manifest
from sslx.errors import InputError
from sslx.train.batches import (
    Batch,
    Encoded,
    View,
    rank_batch_size,
    steps_per_epoch,
    undecodable,
)


@dataclass(frozen=True)
class Piece:
    """Samples [skip, skip + take) of one shard."""

    path: str
    first_index: int
    skip: int
    take: int


def worker_batches(steps: int, worker: int, num_workers: int) -> int:
    """Batches delivered by worker `worker`: batch j goes to worker j mod num_workers."""
    return steps // num_workers + (worker < steps % num_workers)


def worker_pieces(
    shard_counts: list[int],
    seed: int,
    epoch: int,
    rank: int,
    world_size: int,
    worker: int,
    num_workers: int,
    batch_size: int,
) -> list[tuple[int, int, int]]:
    """(shard position, skip, take) triples of one worker's stretch of the epoch
    (`batch_size` is the global batch)."""
    n = sum(shard_counts)
    steps = steps_per_epoch(n, batch_size)
    per_rank = rank_batch_size(batch_size, world_size)
    before = sum(worker_batches(steps, w, num_workers) for w in range(worker))
    start = rank_share(n, rank, world_size).start + before * per_rank
    end = start + worker_batches(steps, worker, num_workers) * per_rank
    order = seeds.rng(seed, "data_order", epoch).permutation(len(shard_counts))
    pieces, offset = [], 0
    for shard in order.tolist():
        count = shard_counts[shard]
        lo, hi = max(start, offset), min(end, offset + count)
        if lo < hi:
            pieces.append((shard, lo - offset, hi - lo))
        offset += count
        if offset >= end:
            break
    return pieces


class ShardStream(torch.utils.data.IterableDataset):
    """`Batch`es of b = batch_size / world_size images (`batch_size` is the global batch),
    images uint8 (b, S, S, 3)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        batch_size: int,
        input_size: int,
        crop: CropConfig,
        seed: int = 0,
        shuffle_buffer: int = 5000,
        rank: int = 0,
        world_size: int = 1,
        views: tuple[ViewSpec, ...] = (),
        encoded: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.where = str(folder)
        manifest = read_manifest(self.folder)
        self.num_samples = int(manifest["num_samples"])
        identity = {"config": manifest["config"], "sources": manifest["sources"]}
        self.fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        self.patch_size = int(manifest["config"]["size"])
        self.shards = [
            Piece(str(self.folder / s["name"]), int(s["first_index"]), 0, int(s["num_samples"]))
            for s in manifest["shards"]
        ]
        missing = [p.path for p in self.shards if not Path(p.path).is_file()]
        if missing:
            raise InputError(
                f"{len(missing)} shard(s) listed in the manifest are missing, e.g. {missing[0]}"
            )
        if self.num_samples == 0:
            raise InputError(f"{self.folder} holds no samples")
        self.global_batch = batch_size
        self.batch_size = rank_batch_size(batch_size, world_size)  # this rank's share
        self.input_size = input_size
        self.crop = crop
        self.views = views  # multi-view methods: each sample decoded once, cropped per view
        self.encoded = encoded  # --decode gpu: boxes and bytes, decoded on the device
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.rank, self.world_size = rank, world_size
        self.steps = steps_per_epoch(self.num_samples, batch_size)
        if self.steps == 0:
            raise InputError(
                f"{self.num_samples} samples are fewer than one batch of {batch_size}; "
                "lower --batch-size or generate more patches"
            )
        self.epoch = 0
        self.start_step = 0

    def __len__(self) -> int:
        return self.steps

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Call before iterating; `start_step` > 0 resumes mid-epoch."""
        self.epoch, self.start_step = epoch, start_step

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        workers = info.num_workers if info else 1
        # Worker w serves logical worker (w + start_step) mod K, so that the DataLoader's
        # round robin, which always starts at worker 0, continues the epoch's batch order.
        logical = ((info.id if info else 0) + self.start_step) % workers
        done = worker_batches(self.start_step, logical, workers)
        total = worker_batches(self.steps, logical, workers)
        counts = [p.take for p in self.shards]
        pieces = [
            Piece(self.shards[s].path, self.shards[s].first_index, skip, take)
            for s, skip, take in worker_pieces(
                counts,
                self.seed,
                self.epoch,
                self.rank,
                self.world_size,
                logical,
                workers,
                self.global_batch,
            )
        ]
        errors: list[str] = []
        rng = random.Random(seeds.int_seed(self.seed, "data_order", self.epoch, self.rank, logical))
        raw = wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(
            _read_pieces(pieces, errors)
        )
        bad = 0
        for b in range(total):
            chunk = list(islice(raw, self.batch_size))
            bad += self.batch_size - len(chunk)  # samples the shards failed to deliver
            if b < done:
                continue
            batch = self._decode(chunk)
            batch.bad += bad
            batch.errors = errors[:] + batch.errors
            errors.clear()
            bad = 0
            yield batch

    def _decode(self, chunk: list[tuple[int, bytes]]) -> Batch:
        if self.encoded:
            return self._boxes(chunk)
        if self.views:
            return self._decode_views(chunk)
        side, size = self.patch_size, self.input_size
        images, keep, errors = [], [], []
        for index, jpeg in chunk:
            out = draw_crop(
                jpeg,
                index,
                size=size,
                crop=self.crop,
                seed=self.seed,
                epoch=self.epoch,
                shape=(side, side),
            )
            if out is None:
                errors.append(undecodable(index, side))
                continue
            images.append(out)
            keep.append(index)
        return Batch.of(images, keep, size=size, bad=len(chunk) - len(keep), errors=errors)

    def _decode_views(self, chunk: list[tuple[int, bytes]]) -> Batch:
        """Each sample decoded once and cropped once per view (`self.views`)."""
        side = self.patch_size
        images: list[list] = [[] for _ in self.views]
        params: list[list] = [[] for _ in self.views]
        keep, errors = [], []
        for index, jpeg in chunk:
            image = decode_rgb(jpeg)
            if image is None or image.shape[:2] != (side, side):
                errors.append(undecodable(index, side))
                continue
            for v, spec in enumerate(self.views):
                box, row = draw_view(self.seed, self.epoch, index, v, side, side, spec)
                images[v].append(render_crop(image, *box, spec.size, (side, side)))
                params[v].append(row)
            keep.append(index)
        views = [View.of(i, p, s.size) for i, p, s in zip(images, params, self.views, strict=True)]
        bad = len(chunk) - len(keep)
        return Batch.of([], keep, size=side, bad=bad, errors=errors, views=views)

    def _boxes(self, chunk: list[tuple[int, bytes]]) -> Batch:
        """The batch undecoded (`Encoded`): the bytes, and the boxes and photometric draws
        the CPU path would have used for each view (`sslx.train.device_decode`)."""
        side = self.patch_size
        # Only JPEGs whose header says side x side go to the device decoder: a forged
        # 60000 x 60000 header must not reach it (the CPU path refuses it the same way).
        fits = [jpeg_size(jpeg) == (side, side) for _, jpeg in chunk]
        errors = [undecodable(i, side) for (i, _), ok in zip(chunk, fits, strict=True) if not ok]
        chunk = [sample for sample, ok in zip(chunk, fits, strict=True) if ok]
        indices = [index for index, _ in chunk]
        if self.views:
            boxes, params = [], []
            for v, spec in enumerate(self.views):
                draws = [draw_view(self.seed, self.epoch, i, v, side, side, spec) for i in indices]
                boxes.append([box for box, _ in draws])
                params.append([row for _, row in draws])
            sizes = tuple(spec.size for spec in self.views)
        else:
            c = sample_crops(self.seed, self.epoch, indices, side, side, self.crop)
            boxes = [list(zip(c.x0, c.y0, c.w, c.h, c.flip, strict=True))]
            params, sizes = [], (self.input_size,)
        data = [torch.frombuffer(bytearray(jpeg), dtype=torch.uint8) for _, jpeg in chunk]
        box_array = torch.tensor(np.array(boxes, np.int64).reshape(len(sizes), len(chunk), 5))
        views = [View.of([], rows, size) for rows, size in zip(params, sizes, strict=False)]
        bad = len(errors)
        batch = Batch.of([], indices, size=self.input_size, bad=bad, errors=errors, views=views)
        batch.encoded = Encoded(data, side, box_array, sizes)
        return batch

    def first_images(self, count: int) -> torch.Tensor | None:
        """The first `count` samples of the first shard, whole (no train crop) at the input
        size: uint8 (n, S, S, 3), the same every epoch and after every resume (None if the
        shard yields none; the loader reports its unreadable samples anyway)."""
        first = self.shards[0]
        piece = Piece(first.path, first.first_index, 0, min(count, first.take))
        side, images = self.patch_size, []
        for _, jpeg in _read_pieces([piece], []):
            image = draw_crop(jpeg, 0, size=self.input_size, crop=None, shape=(side, side))
            if image is not None:
                images.append(image)
        return Batch.of(images, range(len(images)), size=self.input_size).image if images else None


def _read_pieces(pieces: list[Piece], errors: list[str]) -> Iterator[tuple[int, bytes]]:
    """(global index, JPEG bytes) of each piece's samples, via WebDataset's tar reader."""
    for piece in pieces:
        failures: list[str] = []

        def handler(exn: Exception, failures=failures) -> bool:
            failures.append(f"{type(exn).__name__}: {exn}")
            return True  # count it and go on with the next shard

        samples = wds.tarfile_samples(
            [{"url": piece.path}], handler=handler, select_files=lambda name: name.endswith(".jpg")
        )
        got = 0
        for sample in islice(samples, piece.skip, piece.skip + piece.take):
            jpeg, key = sample.get("jpg"), sample.get("__key__", "")
            if jpeg is None or not key.isdigit():
                failures.append(f"sample {key!r} has no .jpg member")
                continue
            got += 1
            yield int(key), jpeg
        short = piece.take - got
        if failures or short:
            # One line per piece, naming its own range: a shard split over workers or ranks
            # gets one line per piece, so the counts add up to what was lost.
            first = piece.first_index + piece.skip
            where = f"{Path(piece.path).name} samples {first}-{first + piece.take - 1}"
            reason = failures[0] if failures else "fewer samples than the manifest lists"
            errors.append(f"{where}: {short} of {piece.take} unreadable ({reason})")
