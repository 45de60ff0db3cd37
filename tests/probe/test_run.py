import itertools

import pytest
import torch

from sslx.common.labelled import load_labelled
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.features import FrozenTrunk, epoch_batches, extract_features
from sslx.probe.networks import random_network
from sslx.probe.run import probe_network
from sslx.train.model import ModelConfig

OPTIONS = ProbeOptions(workers=0, quiet=True)
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


@pytest.fixture(scope="module")
def data(image_folder):
    return load_labelled("imagefolder", image_folder, val_fraction=0.25, split_seed=0)


def _config(**kw) -> ProbeConfig:
    base = dict(layers=LAYERS, epochs=4, batch_size=16, lr=0.05, lr_milestones=(3,), crop_ratio=1.0)
    return ProbeConfig(**{**base, **kw})


def test_joint_training_reduces_every_probes_loss(data):
    net = random_network(ModelConfig(input_size=32), 0)
    result = probe_network(net, data, _config(cache_features=True), OPTIONS)
    for layer in LAYERS:
        history = result.train_loss[layer]
        assert len(history) == 4 and history[-1] < history[0], (layer, history)
    assert set(result.top1) == set(LAYERS)
    assert all(result.top5[n] >= result.top1[n] for n in LAYERS)


def test_cached_and_streamed_features_give_the_same_accuracy(data):
    net = random_network(ModelConfig(input_size=32), 0)
    cached = probe_network(net, data, _config(cache_features=True), OPTIONS)
    streamed = probe_network(net, data, _config(augment=False), OPTIONS)
    for layer in LAYERS:  # same batches; only float16 rounding differs
        assert abs(cached.top1[layer] - streamed.top1[layer]) <= 2 / 15, layer
        assert cached.train_loss[layer][-1] == pytest.approx(
            streamed.train_loss[layer][-1], rel=0.05, abs=0.02
        )


def test_cache_on_disk_is_reused_and_equals_the_in_memory_one(data, tmp_path):
    trunk = FrozenTrunk(random_network(ModelConfig(input_size=32), 0).model, ("conv2",))
    from sslx.probe.data import Transformed, eval_transform

    images = Transformed(data.train, eval_transform(32, 1.0))
    args = dict(batch_size=8, workers=0, device=torch.device("cpu"), progress=False)
    passes = []
    trunk.register_forward_hook(lambda *_: passes.append(1))
    memory = extract_features(trunk, images, **args)
    disk = extract_features(trunk, images, cache_dir=tmp_path, fingerprint="k", **args)
    batches = len(passes)
    assert batches == 2 * -(-len(images) // 8)  # both extractions ran the trunk
    again = extract_features(trunk, images, cache_dir=tmp_path, fingerprint="k", **args)
    assert len(passes) == batches  # the rerun read the files: no forward pass at all
    assert torch.equal(memory.features["conv2"], disk.features["conv2"])
    assert torch.equal(again.features["conv2"], disk.features["conv2"])
    assert memory.features["conv2"].dtype == torch.float16
    other = extract_features(trunk, images, cache_dir=tmp_path, fingerprint="other", **args)
    assert len(passes) > batches and torch.equal(other.features["conv2"], disk.features["conv2"])


def test_an_interrupted_probe_continues_from_its_last_epoch(data, tmp_path, capsys):
    net = random_network(ModelConfig(input_size=32), 0)
    state = tmp_path / "probe.pt"
    whole = probe_network(net, data, _config(cache_features=True), OPTIONS)
    probe_network(net, data, _config(cache_features=True, epochs=2), OPTIONS, state)
    capsys.readouterr()
    resumed = probe_network(net, data, _config(cache_features=True), OPTIONS, state)
    epochs = _config().epochs
    said = f"sslx: resuming {net.name}'s probes: 2 of {epochs} epochs done ({state})"
    assert said in capsys.readouterr().err
    assert resumed.top1 == whole.top1
    for layer in LAYERS:
        assert resumed.train_loss[layer] == pytest.approx(whole.train_loss[layer])


def test_epoch_batches_are_a_seeded_permutation():
    batches = epoch_batches(50, 16, seed=1, epoch=2)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(50))
    assert [len(b) for b in batches] == [16, 16, 18]  # a tail of 2 joins the batch before it
    assert batches == epoch_batches(50, 16, seed=1, epoch=2) != epoch_batches(50, 16, 1, 3)
    assert [len(b) for b in epoch_batches(56, 16, 1, 0)] == [16, 16, 16, 8]  # half: kept


def _separable(n: int, dim: int, classes: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    means = 3 * torch.randn(classes, dim, generator=g)
    return means[labels] + torch.randn(n, dim, generator=g), labels


def test_probe_training_loss_does_not_increase_on_separable_data():
    """The paper's protocol (lr 0.01, momentum 0.9, wd 1e-5, BatchNorm2d + Xavier linear;
    yukimasano/linear-probes) does not diverge: on separable toy features, whose last batch
    of 3 joins the one before it, the training loss falls every epoch."""
    from sslx.probe.heads import LinearProbes
    from sslx.probe.run import make_optimizer, train_probes

    shape = (16, 3, 3)
    features, labels = _separable(99, 16 * 3 * 3, classes=4, seed=0)
    torch.manual_seed(0)
    probes = LinearProbes({"conv1": shape}, num_classes=4)
    optimizer, schedule = make_optimizer(probes, ProbeConfig(layers=("conv1",)))

    def batches(epoch):
        for b in epoch_batches(len(labels), 32, seed=0, epoch=epoch):
            yield {"conv1": features[b]}, labels[b]

    history = train_probes(
        probes, optimizer, schedule, batches, range(5), {"conv1": []}, progress=False
    )["conv1"]
    assert all(b <= a for a, b in itertools.pairwise(history)), history


def test_ten_crop_evaluation_averages_logits_not_probabilities():
    """yukimasano/linear-probes eval_linear_probes.py averages the raw outputs over the crops."""
    from sslx.probe.run import evaluate

    class Fixed(torch.nn.Module):
        layers = ("conv1",)

        def forward(self, features):
            return {"conv1": features["conv1"]}

    # Three crops of one sample: mean logits (6.7, 10) pick class 1, mean softmax (2/3, 1/3)
    # would pick class 0.
    logits = torch.tensor([[0.0, 30.0], [10.0, 0.0], [10.0, 0.0]])
    top1, _ = evaluate(Fixed(), [({"conv1": logits}, torch.tensor([1]))], crops=3)
    assert top1["conv1"] == 1.0


def test_ten_crop_is_the_default_evaluation():
    """The paper's final evaluation is ten-crop (linear-probes --tencrops, evaluate-network.sh)."""
    assert ProbeConfig().ten_crop
    from sslx.probe.data import eval_transform

    crops = eval_transform(224, 0.875, ten_crop=True)(torch.zeros(3, 300, 400, dtype=torch.uint8))
    assert crops.shape == (10, 3, 224, 224)


def test_probe_projects_its_time_after_the_first_steps(data, capsys):
    """One bar over all steps, and a projection line once the first steps are measured."""
    net = random_network(ModelConfig(input_size=32), 0)
    config = _config(augment=False, epochs=2, batch_size=4)
    probe_network(net, data, config, ProbeOptions(workers=0))
    err = capsys.readouterr().err
    assert "per epoch" in err and "left for the probe's epochs" in err
