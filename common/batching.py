"""Index arithmetic every stage batches with: positions cut into batches, and each
rank's contiguous share (torch-free)."""

from __future__ import annotations

from collections.abc import Iterable


def in_order(positions: int | Iterable[int], batch_size: int) -> list[list[int]]:
    """`positions` (or range(n) for an int) cut into batches, in order; the last is shorter."""
    items = list(range(positions) if isinstance(positions, int) else positions)
    return [items[a : a + batch_size] for a in range(0, len(items), batch_size)]


def rank_share(n: int, rank: int, world_size: int) -> range:
    """Rank `rank`'s contiguous stretch of n items (the ranks' stretches tile range(n))."""
    return range(rank * n // world_size, (rank + 1) * n // world_size)
