"""The batch a training step takes, made in one place (`Batch.of`), and the loaders of
draws: a map-style dataset whose item `i` is `(image uint8 HWC | None, sample index,
label, error | None)`, batched in a fixed order.

`rank_batches` splits an epoch's draws between ranks in contiguous stretches and batches
them (each rank takes its share of the global batch); the DataLoader hands whole batches
to its workers in turn, so the batches and their order do not depend on the worker count.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from tqdm import tqdm

from sslx.common.batching import rank_share
from sslx.common.device import PREFETCH_BATCHES
from sslx.errors import InputError

if TYPE_CHECKING:
    from sslx.train.distributed import Dist


@dataclass
class View:
    """One view of every sample of a batch (multi-view methods): uint8 images, (b, S, S, 3)
    on the host and (b, 3, S, S) on the device, and their photometric draws, float32
    (b, len(sslx.common.views.PARAMS))."""

    image: torch.Tensor
    params: torch.Tensor

    @classmethod
    def of(cls, images: Sequence[np.ndarray], params: Sequence[np.ndarray], size: int) -> View:
        array = np.stack(images) if len(images) else np.zeros((0, size, size, 3), np.uint8)
        rows = np.stack(params) if len(params) else np.zeros((0, 0), np.float32)
        return cls(torch.from_numpy(array), torch.from_numpy(rows))

    def pin_memory(self) -> View:
        return View(self.image.pin_memory(), self.params.pin_memory())

    def to(self, device: torch.device) -> View:
        image = self.image.to(device, non_blocking=True).permute(0, 3, 1, 2)
        return View(image, self.params.to(device, non_blocking=True))


def undecodable(index: int, side: int) -> str:
    """The error line of a shard sample that is not the side x side JPEG it should be."""
    return f"sample {index:09d} is not a decodable {side}x{side} JPEG"


@dataclass
class Encoded:
    """A batch the loader did not decode (`--decode gpu`): each sample's JPEG bytes, its
    source side, and each view's crop box and flip, int64 (views, b, 5) as (x0, y0, w, h,
    flip), with the view's output side (`sslx.train.device_decode` renders them)."""

    data: list[torch.Tensor]
    side: int
    boxes: torch.Tensor
    sizes: tuple[int, ...]


@dataclass
class Batch:
    """Images of one step and what is known about them. On the host `image` is uint8
    (b, S, S, 3); `to(device)` gives the model's view, uint8 (b, 3, S, S) on the device
    (channels-last in memory, so the move is one copy)."""

    image: torch.Tensor
    index: torch.Tensor  # int64 (b,): the samples' global indices
    label: torch.Tensor | None = None  # int64 (b,), for methods that train on labels
    bad: int = 0  # unreadable samples left out of this batch (and before it)
    errors: list[str] = field(default_factory=list)  # what was unreadable, one line each
    # Multi-view methods: every view of the samples; `image` is then the first view's.
    views: list[View] = field(default_factory=list)
    encoded: Encoded | None = None  # not decoded yet: `image` and the views' are empty

    @classmethod
    def of(
        cls,
        images: Sequence[np.ndarray],
        indices: Sequence[int],
        labels: Sequence[int] | None = None,
        *,
        size: int = 0,
        bad: int = 0,
        errors: Sequence[str] = (),
        views: Sequence[View] = (),
    ) -> Batch:
        """The batch of decoded images (RGB uint8 HWC, all size x size); with `views`, the
        image is the first view's (the same tensor, so it moves to the device once)."""
        empty = np.zeros((0, size, size, 3), np.uint8)
        array = np.stack(images) if len(images) else empty
        image = views[0].image if views else torch.from_numpy(array)
        label = None if labels is None else torch.tensor(list(labels), dtype=torch.int64)
        index = torch.tensor(list(indices), dtype=torch.int64)
        return cls(image, index, label, bad, list(errors), list(views))

    def __len__(self) -> int:
        return len(self.index)

    def pin_memory(self) -> Batch:  # the DataLoader's pin_memory calls it
        label = None if self.label is None else self.label.pin_memory()
        views = [v.pin_memory() for v in self.views]
        image = views[0].image if self._first_view_is_image() else self.image.pin_memory()
        index = self.index.pin_memory()
        return Batch(image, index, label, self.bad, self.errors, views, self.encoded)

    def to(self, device: torch.device) -> Batch:
        """On the device, with images as (b, 3, S, S) views of the channels-last data."""
        views = [v.to(device) for v in self.views]
        if self._first_view_is_image():  # one copy, not two
            image = views[0].image
        else:
            image = self.image.to(device, non_blocking=True).permute(0, 3, 1, 2)
        label = None if self.label is None else self.label.to(device, non_blocking=True)
        index = self.index.to(device, non_blocking=True)
        return Batch(image, index, label, self.bad, self.errors, views)

    def _first_view_is_image(self) -> bool:
        return bool(self.views) and self.views[0].image is self.image


def collate_draws(items: list[tuple]) -> Batch:
    """Draws -> one `Batch`; unreadable draws are counted and reported, not batched."""
    good = [it for it in items if it[0] is not None]
    return Batch.of(
        [it[0] for it in good],
        [it[1] for it in good],
        [it[2] for it in good],
        bad=len(items) - len(good),
        errors=[it[3] for it in items if it[3] is not None],
    )


def rank_batch_size(batch_size: int, world_size: int) -> int:
    """Each rank's share of the global batch; one that does not divide evenly is refused."""
    if batch_size % world_size:
        raise InputError(
            f"--batch-size {batch_size} (the global batch) does not divide evenly over "
            f"{world_size} ranks"
        )
    return batch_size // world_size


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Steps of one epoch for a global batch: the same on every rank count."""
    return num_samples // batch_size


def rank_batches(
    length: int, batch_size: int, rank: int, world_size: int, start_step: int = 0
) -> list[list[int]]:
    """This rank's batches of draw positions: a contiguous stretch, minus `start_step`;
    `batch_size` is the global batch, each batch holds this rank's share of it."""
    steps = steps_per_epoch(length, batch_size)
    b = rank_batch_size(batch_size, world_size)
    start = rank_share(length, rank, world_size).start
    return [list(range(start + s * b, start + (s + 1) * b)) for s in range(start_step, steps)]


def init_loader_worker(_: int) -> None:
    """One decode thread per worker; Ctrl-C is the main process's to handle (it saves)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def epoch_loader(
    dataset: torch.utils.data.Dataset,
    batches: list[list[int]],
    workers: int,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """Batches of draws in the given order, decoded by `workers` processes."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collate_draws,
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=init_loader_worker,
        prefetch_factor=PREFETCH_BATCHES if workers > 0 else None,
    )


@dataclass
class BadSamples:
    """The epoch's unreadable samples: each shard or sample reported once, and their count
    held to --max-bad-fraction of the epoch."""

    fraction: float  # --max-bad-fraction, for the message
    allowed: float  # samples this epoch may lose on this rank
    count: int = 0
    reported: set[str] = field(default_factory=set)

    def check(self, batch: Batch, epoch: int, dist: Dist) -> None:
        self.count += batch.bad
        for message in batch.errors:
            key = message.split(":")[0]
            if key not in self.reported:
                self.reported.add(key)
                prefix = f"[rank {dist.rank}] " if dist.enabled else ""
                tqdm.write(f"sslx: warning: {prefix}{message}", file=sys.stderr)
        if self.count > self.allowed:
            raise InputError(
                f"{self.count} unreadable samples in epoch {epoch} on rank {dist.rank}, more "
                f"than --max-bad-fraction {self.fraction} allows; first: "
                f"{next(iter(self.reported), 'see warnings above')}"
            )
        if len(batch) == 0:
            raise InputError(f"a batch of epoch {epoch} had no readable samples")
