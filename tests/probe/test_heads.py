import pytest
import torch

from sslx.errors import InputError
from sslx.probe.heads import LinearProbes
from sslx.train.model import parse_layers


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
