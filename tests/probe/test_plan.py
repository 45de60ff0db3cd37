"""The probe's cost is said before it is paid: cache size, bf16 trunk, projected time."""

import pytest
import torch

from sslx.errors import InputError
from sslx.probe.features import FrozenTrunk, trunk_features
from sslx.probe.networks import random_network
from sslx.probe.plan import cache_bytes, check_cache_fits
from sslx.train.model import CONV_LAYERS, ModelConfig
from sslx.train.taps import probe_dims

LAYERS = ("conv1", "conv3", "conv5")


def test_cache_size_counts_every_tap_crop_and_label():
    dims = {"conv1": 3, "conv2": 5}
    assert cache_bytes(10, 4, dims, 10) == 10 * 16 + 4 * 10 * 16 + 8 * 14
    # The paper's scale: 1.28M train images at 224 px, 50k ten-crop val, 5 taps of ~9.4k.
    dims = probe_dims(ModelConfig(input_size=224), CONV_LAYERS)
    assert round(cache_bytes(1_281_167, 0, dims, 10) / 1e9) == 121
    assert round(cache_bytes(0, 50_000, dims, 10) / 1e9) == 47


def test_a_cache_that_does_not_fit_is_refused_with_its_size(tmp_path):
    check_cache_fits(1000, None)
    check_cache_fits(1000, tmp_path / "new" / "net")
    with pytest.raises(InputError, match=r"needs 1000000000\.0 GB, only .* GB memory available"):
        check_cache_fits(10**18, None)
    with pytest.raises(InputError, match=r"GB free in .*--cache-dir"):
        check_cache_fits(10**18, tmp_path / "net")


def _trunk():
    return FrozenTrunk(random_network(ModelConfig(input_size=64), 0).model, LAYERS)


def test_bf16_trunk_gives_close_float32_features():
    trunk = _trunk()
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    full = trunk_features(trunk, images, bf16=False)
    half = trunk_features(trunk, images, bf16=True)
    for layer in LAYERS:
        assert half[layer].dtype == torch.float32
        scale = full[layer].abs().max()
        assert (half[layer] - full[layer]).abs().max() <= 0.05 * scale, layer


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_trunk_on_cuda_gives_close_features():
    trunk = _trunk().cuda()
    images = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8).cuda()
    full = trunk_features(trunk, images, bf16=False)
    half = trunk_features(trunk, images, bf16=True)
    for layer in LAYERS:
        scale = full[layer].abs().max()
        assert (half[layer] - full[layer]).abs().max() <= 0.05 * scale, layer
