"""The one seed scheme: named streams are pure functions of their key and never collide."""

import itertools

import numpy as np
import pytest

from sslx import seeds


def test_distinct_seed_stream_epoch_index_never_share_a_stream():
    keys = [(), (0,), (1,), (0, 0), (0, 1), (1, 0), (2, 0), (0, 0, 0), (1000,), (0, 1000)]
    states = {}
    for seed, stream, key in itertools.product((0, 1, 2), seeds.STREAMS, keys):
        state = tuple(seeds.seed_sequence(seed, stream, *key).generate_state(4))
        assert state not in states, f"{(seed, stream, key)} collides with {states[state]}"
        states[state] = (seed, stream, key)
    # Generated patches keep their own key, (seed, index), and meet no named stream.
    for seed, index in itertools.product((0, 1, 2), range(8)):
        state = tuple(np.random.SeedSequence((seed, index)).generate_state(4))
        assert state not in states


def test_the_old_hand_mixed_collision_is_gone():
    # seed*1000 + epoch made seed 0 at epoch 1000 equal seed 1 at epoch 0.
    assert seeds.int_seed(0, "probe", 1000, 1) != seeds.int_seed(1, "probe", 0, 1)


def test_uniforms_are_a_pure_function_of_seed_stream_epoch_index():
    a = seeds.uniforms(1, "crops", 2, [5, 6, 7], 4)
    b = seeds.uniforms(1, "crops", 2, [7, 5], 4)
    assert np.array_equal(a[[2, 0]], b)
    assert not np.array_equal(a, seeds.uniforms(1, "crops", 3, [5, 6, 7], 4))
    assert not np.array_equal(a, seeds.uniforms(2, "crops", 2, [5, 6, 7], 4))
    big = seeds.uniforms(0, "crops", 0, np.arange(5000), 3)
    assert big.min() >= 0 and big.max() < 1 and abs(big.mean() - 0.5) < 0.02
    assert abs(np.corrcoef(big[:, 0], big[:, 1])[0, 1]) < 0.05


def test_unknown_stream_and_negative_seed_are_refused():
    from sslx.errors import InputError
    from sslx.options import SEED

    with pytest.raises(KeyError):
        seeds.rng(0, "nope")
    with pytest.raises(InputError, match="--seed must be >= 0"):
        SEED.check("seed", -1)
