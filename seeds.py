"""The one seed scheme: every random choice in sslx comes from a named stream.

A stream is numpy's `SeedSequence(seed, spawn_key=(stream id, number of keys, *keys))`:
the run seed is the entropy, and the spawn key says what the numbers are for (init,
data order, crops, ...) and for which epoch, sample, step or rank. Different names or
keys never share a stream: the key's length is part of it, so (1, 2) and (1, 2, 0) differ,
which plain `SeedSequence([seed, epoch])` does not guarantee (trailing zeros vanish).

Generated patches keep their own key, `SeedSequence((seed, index))`, so shards made
before this module existed stay byte-identical; it cannot meet a named stream, whose
spawn key always makes the assembled entropy longer than the four-word pool.
"""

from __future__ import annotations

import numpy as np

STREAMS = {
    "init": 1,  # network initialisation (the same on every rank)
    "data_order": 2,  # shard order and shuffle buffers; labelled-data order
    "crops": 3,  # train crops and flips, per (epoch, sample)
    "dropout": 4,  # the torch RNG at each training step, per (step, rank)
    "clustering": 5,  # DeepCluster: k-means seeding, head reset, uniform cluster draws
    "probe": 6,  # linear probes: init, batch order, augmentation
    "split": 7,  # the held-out validation split of a labelled dataset
    "views": 8,  # multi-view methods: crop and colour draws per (epoch, sample, view)
    "eval_cluster": 9,  # probe --eval cluster: k-means seeding per (layer crc32, restart)
    "monitor": 10,  # train --monitor: the monitor set's picks per (split, class), at seed 0
}


def seed_sequence(seed: int, stream: str, *keys: int) -> np.random.SeedSequence:
    """The stream `stream` of run `seed` at `keys` (e.g. epoch, sample index)."""
    if stream not in STREAMS:
        raise KeyError(f"unknown seed stream {stream!r} (known: {', '.join(STREAMS)})")
    key = (STREAMS[stream], len(keys), *map(int, keys))
    return np.random.SeedSequence(int(seed), spawn_key=key)


def rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng(seed_sequence(seed, stream, *keys))


def int_seed(seed: int, stream: str, *keys: int) -> int:
    """A 63-bit integer seed for torch.manual_seed, torch.Generator or random.Random."""
    state = seed_sequence(seed, stream, *keys).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def uniforms(seed: int, stream: str, epoch: int, indices, n: int) -> np.ndarray:
    """(len(indices), n) uniforms in [0, 1); row i depends only on (seed, stream, epoch,
    indices[i]), so it does not matter which worker or batch draws it."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    out = np.empty((len(indices), n))
    for row, index in enumerate(indices.tolist()):
        out[row] = rng(seed, stream, epoch, index).random(n)
    return out


def patch_uniforms(seed: int, index: int, n: int) -> np.ndarray:
    """The uniforms that decide generated patch `index` (sslx generate's own key)."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(index)))).random(n)
