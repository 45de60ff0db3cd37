"""`--method supervised` (the full-supervision row) and the `--init/--freeze` protocol."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from sslx.train.checkpoint import load_backbone, load_checkpoint
from sslx.train.crops import CropConfig
from sslx.train.labelled import LabelledData, LabelledDraws

CLASSES = ("red", "green", "blue")
FAST = ["--size", "64", "--conv1-stride", "4", "--classifier-width", "512", "--workers", "0",
        "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """3 classes x 24 noisy 40x48 PNGs whose dominant channel is the class."""
    root = tmp_path_factory.mktemp("labelled") / "train"
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(24):
            image = rng.integers(0, 120, (40, 48, 3), dtype=np.uint8)
            image[..., c] += 120
            cv2.imwrite(str(root / name / f"{i:02d}.png"), image[..., ::-1])  # RGB -> BGR
    return root


def _supervised(labelled, out, *extra) -> list[str]:
    return ["train", "--method", "supervised", "--dataset", "imagefolder", "--data-dir",
            str(labelled), "--out", str(out), "--batch-size", "16", "--lr", "0.05", *FAST,
            *extra]  # fmt: skip


def test_training_split_excludes_the_probes_held_out_images(labelled):
    from sslx.train.labelled import load_labelled

    data = LabelledData("imagefolder", str(labelled), val_fraction=0.25, split_seed=3)
    probe = load_labelled("imagefolder", labelled, val_fraction=0.25, split_seed=3)
    train, val = set(data.images.indices), set(probe.val.indices)
    assert train == set(probe.train.indices) and not train & val
    assert data.num_samples == 54 and len(val) == 18
    assert np.array_equal(
        data.labels, [probe.train.dataset.targets[i] for i in data.images.indices]
    )


def test_each_epoch_draws_every_training_image_once_with_seeded_crops(labelled):
    data = LabelledData("imagefolder", str(labelled))
    crop = CropConfig(crop_scale_min=0.2)
    draws = LabelledDraws(data, input_size=32, crop=crop, seed=1, epoch=0)
    items = [draws[i] for i in range(len(draws))]
    assert sorted(it[1] for it in items) == list(range(data.num_samples))
    assert all(it[0].shape == (32, 32, 3) and it[0].dtype == np.uint8 for it in items)
    assert all(it[2] == data.labels[it[1]] for it in items)
    again = LabelledDraws(data, input_size=32, crop=crop, seed=1, epoch=0)
    assert all(np.array_equal(again[i][0], items[i][0]) for i in range(5))
    other = LabelledDraws(data, input_size=32, crop=crop, seed=1, epoch=1)
    assert not np.array_equal(other.order, draws.order)


def test_supervised_run_learns_the_classes(labelled, tmp_path):
    from sslx.cli import main

    run = tmp_path / "sup"
    assert main(_supervised(labelled, run, "--epochs", "6", "--log-every", "4")) == 0
    payload = load_checkpoint(run)
    assert payload["method"] == "supervised" and payload["progress"]["finished"]
    assert payload["heads"]["head.weight"].shape == (3, 512)

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    accuracies = [r["accuracy"] for r in records if "accuracy" in r]
    assert accuracies[-1] > 0.6 > accuracies[0], accuracies


def test_supervised_resume_is_exact(labelled, tmp_path):
    from sslx.cli import main

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(_supervised(labelled, whole, "--epochs", "2")) == 0
    assert main(_supervised(labelled, parts, "--epochs", "2", "--max-steps", "5")) == 0
    assert main(["train", "--out", str(parts), "--resume", "--quiet", "--workers", "0"]) == 0
    a, b = load_checkpoint(whole), load_checkpoint(parts)
    for key in a["backbone"]:
        assert torch.equal(a["backbone"][key], b["backbone"][key]), key


def test_init_and_freeze_keep_the_frozen_layers_of_the_source(labelled, tmp_path):
    from sslx.cli import main

    source, run = tmp_path / "source", tmp_path / "table4"
    assert main(_supervised(labelled, source, "--epochs", "1", "--seed", "5")) == 0
    args = _supervised(labelled, run, "--epochs", "2", "--init", str(source / "checkpoint.pt"),
                       "--freeze", "conv2,conv1")  # fmt: skip
    assert main(args) == 0
    src, _ = load_backbone(source)
    net, payload = load_backbone(run)
    assert payload["config"]["freeze"] == ["conv1", "conv2"]
    for name in ("conv1", "conv2"):  # weights and BatchNorm running statistics
        for key, value in src.convs[name].state_dict().items():
            assert torch.equal(value, net.convs[name].state_dict()[key]), (name, key)
    assert not torch.equal(src.convs["conv3"][0].weight, net.convs["conv3"][0].weight)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--freeze", "conv9"], "--freeze: unknown layer(s) conv9"),
        (["--init", "{missing}"], "missing"),
        (["--init", "{source}", "--size", "32", "--conv1-stride", "1"], "--init"),
        (["--shards", "{labelled}"], "reads --data-dir, not --shards"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(labelled, tmp_path, capsys, extra, message):
    from sslx.cli import main

    source = tmp_path / "source"
    if "{source}" in extra:
        assert main(_supervised(labelled, source, "--epochs", "1")) == 0
        capsys.readouterr()
    names = {"missing": tmp_path / "missing.pt", "source": source, "labelled": labelled}
    extra = [a.format(**names) for a in extra]
    assert main(_supervised(labelled, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize(
    ("data_dir", "message"), [("{missing}", "dataset path not found"), ("", "needs --data-dir")]
)
def test_missing_labelled_data_is_exit_2(tmp_path, capsys, data_dir, message):
    from sslx.cli import main

    data_dir = data_dir.format(missing=tmp_path / "nope")
    args = ["train", "--method", "supervised", "--data-dir", data_dir,
            "--out", str(tmp_path / "run"), *FAST]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
