import pytest
import torch

from sslx.probe.features import FrozenTrunk, epoch_batches, extract_features
from sslx.probe.networks import random_network
from sslx.probe.run import ProbeConfig, ProbeOptions, probe_network
from sslx.train.labelled import load_labelled

OPTIONS = ProbeOptions(workers=0, progress=False)
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


@pytest.fixture(scope="module")
def data(image_folder):
    return load_labelled("imagefolder", image_folder, val_fraction=0.25, split_seed=0)


def _config(**kw) -> ProbeConfig:
    base = dict(layers=LAYERS, epochs=4, batch_size=16, lr=0.05, lr_milestones=(3,),
                crop_ratio=1.0)  # fmt: skip
    return ProbeConfig(**{**base, **kw})


def test_joint_training_reduces_every_probes_loss(data):
    result = probe_network(random_network(32, False, 0, 0), data, _config(cache_features=True),
                           OPTIONS)  # fmt: skip
    for layer in LAYERS:
        history = result.train_loss[layer]
        assert len(history) == 4 and history[-1] < history[0], (layer, history)
    assert set(result.top1) == set(LAYERS)
    assert all(result.top5[n] >= result.top1[n] for n in LAYERS)


def test_cached_and_streamed_features_give_the_same_accuracy(data):
    net = random_network(32, False, 0, 0)
    cached = probe_network(net, data, _config(cache_features=True), OPTIONS)
    streamed = probe_network(net, data, _config(augment=False), OPTIONS)
    for layer in LAYERS:  # same batches; only float16 rounding differs
        assert abs(cached.top1[layer] - streamed.top1[layer]) <= 2 / 15, layer
        assert cached.train_loss[layer][-1] == pytest.approx(
            streamed.train_loss[layer][-1], rel=0.05, abs=0.02
        )


def test_cache_on_disk_is_reused_and_equals_the_in_memory_one(data, tmp_path):
    trunk = FrozenTrunk(random_network(32, False, 0, 0).model, ("conv2",))
    from sslx.probe.data import Transformed, eval_transform

    images = Transformed(data.train, eval_transform(32, 1.0))
    args = dict(batch_size=8, workers=0, device=torch.device("cpu"), progress=False)
    memory = extract_features(trunk, images, **args)
    disk = extract_features(trunk, images, cache_dir=tmp_path, fingerprint="k", **args)
    again = extract_features(trunk, images, cache_dir=tmp_path, fingerprint="k", **args)
    assert torch.equal(memory.features["conv2"], disk.features["conv2"])
    assert torch.equal(again.features["conv2"], disk.features["conv2"])
    assert memory.features["conv2"].dtype == torch.float16


def test_an_interrupted_probe_continues_from_its_last_epoch(data, tmp_path):
    net = random_network(32, False, 0, 0)
    state = tmp_path / "probe.pt"
    whole = probe_network(net, data, _config(cache_features=True), OPTIONS)
    probe_network(net, data, _config(cache_features=True, epochs=2), OPTIONS, state)
    resumed = probe_network(net, data, _config(cache_features=True), OPTIONS, state)
    assert resumed.top1 == whole.top1
    for layer in LAYERS:
        assert resumed.train_loss[layer] == pytest.approx(whole.train_loss[layer])


def test_epoch_batches_are_a_seeded_permutation():
    batches = epoch_batches(50, 16, seed=1, epoch=2)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(50)) and len(batches) == 4  # the last batch has 2
    assert batches == epoch_batches(50, 16, seed=1, epoch=2) != epoch_batches(50, 16, 1, 3)


def test_probe_projects_its_time_after_the_first_steps(data, capsys):
    """One bar over all steps, and a projection line once the first steps are measured."""
    net = random_network(32, False, 0, 0)
    config = _config(augment=False, epochs=2, batch_size=4)
    probe_network(net, data, config, ProbeOptions(workers=0, progress=True))
    err = capsys.readouterr().err
    assert "per epoch" in err and "left for the probe's epochs" in err
