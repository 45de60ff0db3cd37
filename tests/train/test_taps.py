"""The per-tap pooling: the paper's pools at 224 px, about the same dimensions elsewhere."""

import pytest
import torch

from sslx.train.alexnet import AlexNet, ModelConfig
from sslx.train.taps import TapPooling, probe_dims

PAPER_224 = {"conv1": 9600, "conv2": 9216, "conv3": 9600, "conv4": 9600, "conv5": 9216}


def test_pools_at_224_px_are_the_papers():
    assert probe_dims(ModelConfig(input_size=224)) == PAPER_224


@pytest.mark.parametrize(("size", "stride"), [(64, 0), (64, 4), (32, 0), (96, 0), (128, 0)])
def test_other_sizes_get_similar_dimensions(size, stride):
    model = ModelConfig(input_size=size, conv1_stride=stride)
    dims = probe_dims(model)
    for layer, dim in dims.items():
        channels = model.resolved().tap_shapes()[layer][0]
        side = model.resolved().tap_shapes()[layer][1]
        assert dim <= max(PAPER_224[layer], channels * side * side)  # never more than 9600
        assert dim >= min(0.25 * PAPER_224[layer], channels * side * side), (layer, dim)


@pytest.mark.parametrize("size", [224, 64, 32])
def test_pooling_output_matches_the_declared_dims(size):
    model = AlexNet(ModelConfig(input_size=size)).eval()
    pooling = TapPooling(model.config)
    with torch.no_grad():
        pooled = pooling(model.taps(torch.zeros(2, 3, size, size, dtype=torch.uint8)))
    assert {n: f.shape for n, f in pooled.items()} == {
        n: (2, d) for n, d in probe_dims(model.config).items()
    }
