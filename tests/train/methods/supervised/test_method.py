"""`--method supervised` (the full-supervision row) and the `--init/--freeze` protocol."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sslx.common.crops import CropConfig
from sslx.common.labelled import LabelledData, LabelledDraws
from sslx.train.checkpoint import load_backbone, load_checkpoint
from sslx.train.methods.supervised.spec import SupervisedOptions

CLASSES = ("red", "green", "blue")
FAST = [*"--size 64 --conv1-stride 4 --classifier-width 512 --workers 0 --quiet".split()]


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
    return [
        *"train --method supervised --dataset imagefolder --data-dir".split(),
        str(labelled),
        "--out",
        str(out),
        *"--batch-size 16 --lr 0.05".split(),
        *FAST,
        *extra,
    ]


def test_training_split_excludes_the_probes_held_out_images(labelled):
    from sslx.common.labelled import load_labelled

    data = LabelledData(SupervisedOptions(data_dir=str(labelled), val_fraction=0.25, split_seed=3))
    probe = load_labelled("imagefolder", labelled, val_fraction=0.25, split_seed=3)
    train, val = set(data.images.indices), set(probe.val.indices)
    assert train == set(probe.train.indices) and not train & val
    assert data.num_samples == 54 and len(val) == 18
    assert np.array_equal(
        data.labels, [probe.train.dataset.targets[i] for i in data.images.indices]
    )


def test_each_epoch_draws_every_training_image_once_with_seeded_crops(labelled):
    data = LabelledData(SupervisedOptions(data_dir=str(labelled)))
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
    assert main(["train", "--out", str(parts), *"--resume --quiet --workers 0".split()]) == 0
    a, b = load_checkpoint(whole), load_checkpoint(parts)
    for key in a["backbone"]:
        assert torch.equal(a["backbone"][key], b["backbone"][key]), key


def test_init_and_freeze_keep_the_frozen_layers_of_the_source(labelled, tmp_path):
    from sslx.cli import main

    source, run = tmp_path / "source", tmp_path / "table4"
    assert main(_supervised(labelled, source, "--epochs", "1", "--seed", "5")) == 0
    args = _supervised(
        labelled,
        run,
        "--epochs",
        "2",
        "--init",
        str(source / "checkpoint.pt"),
        "--freeze",
        "conv2,conv1",
    )
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
        ([*"--init {source} --size 32 --conv1-stride 1".split()], "--init"),
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
    ("data_dir", "message"),
    [
        (["--data-dir", "{missing}"], "dataset path not found"),
        (["--data-dir", ""], "Invalid value for '--data-dir': an empty path"),
        ([], "needs --data-dir"),
    ],
)
def test_missing_labelled_data_is_exit_2(tmp_path, capsys, data_dir, message):
    from sslx.cli import main

    data_dir = [a.format(missing=tmp_path / "nope") for a in data_dir]
    args = [*"train --method supervised".split(), *data_dir, "--out", str(tmp_path / "run"), *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


# --- the per-epoch validation and --patience ---


def _epoch_records(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == "epoch_end"]


def _method(labelled, batch_size=16):
    from sslx.train.config import TrainConfig
    from sslx.train.loop import build_method
    from sslx.train.methods.base import EpochContext

    config = TrainConfig.for_method(
        "supervised",
        dataset="imagefolder",
        data_dir=str(labelled),
        input_size=64,
        conv1_stride=4,
        classifier_width=512,
        batch_size=batch_size,
        epochs=1,
        lr=0.05,
        lr_milestones=(),
    )
    method = build_method(config)
    return method, EpochContext(0, torch.device("cpu"), config, Path(), method.data)


def test_every_epoch_logs_val_top1_of_the_held_out_split(labelled, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from sslx.cli import main

    run = tmp_path / "run"
    args = [a for a in _supervised(labelled, run, "--epochs", "2") if a != "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "sslx: epoch 1/2: val_top1 " in err and "sslx: epoch 2/2: val_top1 " in err, err
    records = _epoch_records(run)
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        # 6 held-out images (2 of each class's 24): top-1 is a count of them.
        assert 0 <= r["val_top1"] <= 1 and round(r["val_top1"] * 6, 9).is_integer(), r
        assert r["val_loss"] > 0 and "stopped" not in r
    best = max(records, key=lambda r: r["val_top1"])
    assert records[-1]["best_val_top1"] == best["val_top1"]
    assert records[-1]["best_epoch"] == best["epoch"]
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    assert [e.value for e in events.Scalars("epoch/val_top1")] == pytest.approx(
        [r["val_top1"] for r in records]
    )
    # The last epoch's numbers are those of the checkpoint's weights, in eval mode.
    method, ctx = _method(labelled)
    payload = load_checkpoint(run)
    backbone = {f"backbone.{k}": v for k, v in payload["backbone"].items()}
    method.load_state_dict({**backbone, **payload["heads"]})
    top1, loss = method.validate(ctx)
    assert top1 == records[-1]["val_top1"] and loss == pytest.approx(records[-1]["val_loss"])
    assert method.training  # evaluation puts the training mode back
    assert payload["method_state"]["patience"]["best_epoch"] == best["epoch"]


def test_validation_counts_split_over_ranks_add_up_to_one_rank(labelled):
    method, ctx = _method(labelled)
    whole = method.validation_sums(ctx, 0, 1)
    parts = [method.validation_sums(ctx, r, 4) for r in range(4)]  # 6 images: 1, 2, 1, 2
    assert [int(p[2]) for p in parts] == [1, 2, 1, 2]
    assert torch.equal(sum(p[:1] for p in parts), whole[:1]) and int(whole[2]) == 6
    assert float(sum(p[1] for p in parts)) == pytest.approx(float(whole[1]))
    assert torch.equal(method.validation_sums(ctx, 0, 1), whole)  # no dropout: eval mode


# val_top1 by epoch: epoch 2 is the best; 3 is worse and 4 only equals it (no improvement).
SCRIPT = [0.5, 0.6, 0.55, 0.6, 0.9, 0.9, 0.9, 0.9]


@pytest.fixture
def scripted(monkeypatch):
    from sslx.train.methods.supervised.method import Supervised

    monkeypatch.setattr(Supervised, "validate", lambda self, ctx: (SCRIPT[ctx.epoch], 1.0))


def test_patience_finishes_the_run_and_records_why(labelled, tmp_path, capsys, scripted):
    from sslx.cli import main

    run = tmp_path / "run"
    assert main(_supervised(labelled, run, "--epochs", "8", "--patience", "2")) == 0
    assert "finished 4 epoch(s) (stopped early: patience)" in capsys.readouterr().err
    payload = load_checkpoint(run)
    assert payload["progress"] == {
        "epoch": 4,
        "step_in_epoch": 0,
        "global_step": 16,
        "finished": True,
        "stopped": "patience",
    }
    state = payload["method_state"]["patience"]
    assert state == {"best": 0.6, "best_epoch": 2, "since_best": 2}
    records = _epoch_records(run)
    assert [r["val_top1"] for r in records] == SCRIPT[:4]
    assert records[-1]["stopped"] == "patience" and records[-1]["best_epoch"] == 2
    assert all("stopped" not in r for r in records[:-1])
    for extra in ([], ["--epochs", "20"]):  # finished: a resume has nothing to do
        assert main(["train", "--out", str(run), "--resume", "--quiet", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "is finished: --patience stopped it after 4 epoch(s)" in err, err


def test_patience_0_runs_every_epoch(labelled, tmp_path, scripted):
    from sslx.cli import main

    run = tmp_path / "run"
    assert main(_supervised(labelled, run, "--epochs", "5")) == 0
    progress = load_checkpoint(run)["progress"]
    assert progress["epoch"] == 5 and progress["finished"] and progress["stopped"] is None
    assert _epoch_records(run)[-1]["best_epoch"] == 5


@pytest.mark.parametrize("max_steps", [10, 12])  # mid-epoch 3, and the end of epoch 3
def test_patience_count_survives_a_resume_exactly(labelled, tmp_path, scripted, max_steps):
    from sslx.cli import main

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    args = [*"--epochs 8 --patience 2".split()]
    assert main(_supervised(labelled, whole, *args)) == 0
    assert main(_supervised(labelled, parts, *args, "--max-steps", str(max_steps))) == 0
    assert not load_checkpoint(parts)["progress"]["finished"]
    assert main(["train", "--out", str(parts), *"--resume --quiet --workers 0".split()]) == 0
    a, b = load_checkpoint(whole), load_checkpoint(parts)
    assert a["progress"] == b["progress"] and a["method_state"] == b["method_state"]
    assert _epoch_records(whole) == _epoch_records(parts)
    for key in a["backbone"]:
        assert torch.equal(a["backbone"][key], b["backbone"][key]), key


def test_a_checkpoint_from_before_patience_resumes(labelled, tmp_path, scripted):
    from sslx.atomic import save_torch_atomic as save_atomic
    from sslx.cli import main

    run = tmp_path / "run"
    assert main(_supervised(labelled, run, "--epochs", "3", "--max-steps", "6")) == 0
    old = load_checkpoint(run)
    del old["method_state"], old["progress"]["stopped"]
    save_atomic(old, run / "checkpoint.pt")
    assert main(["train", "--out", str(run), *"--resume --quiet --workers 0".split()]) == 0
    payload = load_checkpoint(run)
    assert payload["progress"]["finished"] and payload["progress"]["epoch"] == 3
    # The count started afresh at the resume: epoch 2 (0.6) is its first, and best.
    assert payload["method_state"]["patience"] == {"best": 0.6, "best_epoch": 2, "since_best": 1}


def test_negative_patience_is_refused(labelled, tmp_path, capsys):
    from sslx.cli import main

    assert main(_supervised(labelled, tmp_path / "run", "--patience", "-1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--patience must be >= 0" in err, err
    assert not (tmp_path / "run" / "config.yaml").exists()
