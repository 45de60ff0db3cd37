"""Positions in batches, and each rank's share."""

from sslx.common.batching import in_order, rank_share


def test_in_order_cuts_positions_into_batches_in_order():
    assert in_order(5, 2) == [[0, 1], [2, 3], [4]]
    assert in_order(range(10, 13), 2) == [[10, 11], [12]]
    assert in_order(0, 4) == []


def test_rank_shares_tile_the_items_contiguously():
    for n, world in ((10, 3), (7, 7), (2, 4), (1000, 8)):
        shares = [rank_share(n, r, world) for r in range(world)]
        assert [i for s in shares for i in s] == list(range(n))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
