import pytest
import torch

from sslx.errors import InputError
from sslx.probe.heads import LinearProbes, TapPooling, probe_dims
from sslx.train.alexnet import AlexNet, ModelConfig
from sslx.train.model import parse_layers

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


def test_probes_are_per_channel_batchnorm_then_xavier_linear():
    """yukimasano/linear-probes eval_linear_probes.py: BatchNorm2d(C, affine=False) on the
    pooled map, then a linear layer (a Conv2d covering the map) with xavier_uniform_(gain 1)
    and zero bias."""
    probes = LinearProbes({"conv1": (3, 2, 2), "conv3": (7, 1, 1)}, num_classes=5)
    out = probes({"conv1": torch.randn(4, 12), "conv3": torch.randn(4, 7)})
    assert {n: z.shape for n, z in out.items()} == {"conv1": (4, 5), "conv3": (4, 5)}
    probe = probes.probes["conv1"]
    assert isinstance(probe.norm, torch.nn.BatchNorm2d) and not probe.norm.affine
    assert probe.norm.num_features == 3
    bound = (6 / (12 + 5)) ** 0.5  # Xavier-uniform, gain 1
    assert probe.linear.weight.abs().max() <= bound and probe.linear.weight.std() > bound / 3
    assert torch.all(probe.linear.bias == 0)


def test_probe_normalises_each_channel_over_batch_and_positions():
    probes = LinearProbes({"conv1": (2, 3, 3)}, num_classes=2).train()
    maps = torch.randn(5, 2, 3, 3) * torch.tensor([1.0, 50.0])[:, None, None] + 7
    probes({"conv1": maps.flatten(1)})
    norm = probes.probes["conv1"].norm
    expected = maps.transpose(0, 1).flatten(1).mean(1)
    assert torch.allclose(norm.running_mean, 0.1 * expected, atol=1e-5)


def test_layer_names_are_checked_and_ordered():
    assert parse_layers("conv3, conv1", "--layers") == ("conv1", "conv3")
    with pytest.raises(InputError, match="conv7"):
        parse_layers("conv1,conv7", "--layers")
