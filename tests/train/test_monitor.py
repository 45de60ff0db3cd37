"""`sslx train --monitor`: the fixed, class-balanced monitor set, each tap's kNN top-1 as
the probe's kNN computes it, the records a run writes, and a run that trains the same
with or without a monitor."""

import json

import pytest
import torch

from sslx.cli import main
from sslx.common.knn import knn_accuracies
from sslx.train.alexnet import AlexNet
from sslx.train.checkpoint import load_checkpoint
from sslx.train.model import ModelConfig
from sslx.train.monitor import SETTING, Monitor, balanced_pick, record_key
from sslx.train.taps import TapPooling

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def test_the_pick_is_even_over_the_classes_and_the_same_every_time():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 4)
    picked = balanced_pick(labels, 30, key=0)
    assert picked == sorted(set(picked)) and len(picked) == 30
    assert torch.bincount(labels[picked]).tolist() == [13, 13, 4]  # class 2 runs out
    assert balanced_pick(labels, 30, key=0) == picked
    assert balanced_pick(labels, 30, key=1) != picked  # the split's own key
    assert torch.bincount(labels[balanced_pick(labels, 9, key=0)]).tolist() == [3, 3, 3]
    assert balanced_pick(labels, 500, key=0) == list(range(84))  # more than there are: all


def test_colour_classes_are_told_apart_at_every_tap_of_an_untrained_network(image_folder):
    """Three classes of solid colours under noise: every tap of a random AlexNet keeps the
    colour, so each query's 20 neighbours share its class."""
    model = ModelConfig(input_size=32, conv1_stride=2, classifier_width=16)
    monitor = Monitor(image_folder, "imagefolder", 50, model)
    assert (len(monitor.memory), len(monitor.queries)) == (
        40,
        6,
    )  # of 54 training and 6 held-out images
    assert torch.bincount(monitor.query_labels).tolist() == [2, 2, 2]
    torch.manual_seed(0)
    values = monitor.measure(AlexNet(model))
    assert values == {record_key(layer): 1.0 for layer in LAYERS}


def test_each_tap_is_the_knn_of_the_probes_pooled_features(image_folder):
    """The monitor equals the kNN run by hand on the pooled taps in float16, and a
    network whose labels do not follow the images scores what its votes say."""
    model = ModelConfig(input_size=32, conv1_stride=2, classifier_width=16)
    monitor = Monitor(image_folder, "imagefolder", 50, model)
    torch.manual_seed(1)
    net = AlexNet(model).eval()
    pooling = TapPooling(net.config)
    with torch.no_grad():
        memory = pooling(net.taps(monitor.memory))
        queries = pooling(net.taps(monitor.queries))
    monitor.query_labels = torch.tensor([0, 0, 0, 1, 1, 2])  # some queries now mislabelled
    values = monitor.measure(net)
    for layer in LAYERS:
        expected = knn_accuracies(
            memory[layer].half(),
            monitor.memory_labels,
            queries[layer].half(),
            monitor.query_labels,
            3,
            (SETTING,),
        )
        assert values[record_key(layer)] == expected[SETTING]["top1"] == 4 / 6


def _train(shards, out, *extra):
    args = ["train", "--shards", str(shards), "--method", "rotnet", "--size", "32"]
    args += ["--conv1-stride", "2", "--classifier-width", "16", "--workers", "0", "--quiet"]
    args += ["--batch-size", "48", "--epochs", "2", "--out", str(out), *extra]
    assert main(args) == 0


def test_a_monitored_run_logs_each_epoch_and_trains_as_an_unmonitored_one(
    shards, image_folder, tmp_path, capsys
):
    monitored, plain = tmp_path / "monitored", tmp_path / "plain"
    _train(shards, monitored, "--monitor", str(image_folder), "--monitor-images", "50")
    _train(shards, plain)
    records = [json.loads(line) for line in (monitored / "metrics.jsonl").read_text().splitlines()]
    marked = [r for r in records if record_key("conv1") in r]
    assert [(r["event"], r["epoch"], r["step"]) for r in marked] == [
        ("monitor", 0, 0),
        ("epoch_end", 1, 5),
        ("epoch_end", 2, 10),
    ]
    for r in marked:
        assert all(0 <= r[record_key(layer)] <= 1 for layer in LAYERS)
    for part in ("backbone", "heads"):
        a = load_checkpoint(monitored / "checkpoint.pt")[part]
        b = load_checkpoint(plain / "checkpoint.pt")[part]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "monitor kNN" not in capsys.readouterr().err  # --quiet says nothing


def test_a_resumed_run_does_not_measure_the_untrained_network_again(shards, image_folder, tmp_path):
    run = tmp_path / "run"
    flags = ["--monitor", str(image_folder), "--monitor-images", "50"]
    _train(shards, run, *flags, "--max-steps", "7")
    assert main(["train", "--out", str(run), "--resume", "--quiet", *flags]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if record_key("conv5") in r] == [0, 5, 10]


@pytest.mark.parametrize("images", [25, 26])
def test_the_smallest_monitor_has_k_memory_images(image_folder, images):
    model = ModelConfig(input_size=32, conv1_stride=2, classifier_width=16)
    assert len(Monitor(image_folder, "imagefolder", images, model).memory) == 20 + (images > 25)
