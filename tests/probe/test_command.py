"""`sslx probe` and `sslx viz filters` through the CLI, as a user runs them."""

import csv
import json

import pytest
import torch

from sslx.cli import main

FAST = [
    *(
        "--epochs 3 --batch-size 16 --lr 0.05 --lr-milestones 2 --workers 0 "
        "--quiet --cache-features"
    ).split()
]


@pytest.fixture(scope="module")
def checkpoint(image_folder, tmp_path_factory):
    """A supervised run on the colour classes: the probe's own reference row."""
    run = tmp_path_factory.mktemp("sup") / "run"
    args = [
        *"train --method supervised --dataset imagefolder --data-dir".split(),
        str(image_folder),
        "--out",
        str(run),
        *("--size 32 --classifier-width 64 --batch-size 16 --epochs 1 --workers 0 --quiet").split(),
    ]
    assert main(args) == 0
    return run


def test_probe_compares_checkpoints_side_by_side(checkpoint, image_folder, tmp_path, capsys):
    out = tmp_path / "probe"
    args = [
        "probe",
        "--checkpoint",
        str(checkpoint),
        *"--random-init --dataset imagefolder --data-dir".split(),
        str(image_folder),
        "--out",
        str(out),
        *FAST,
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "| run |" in captured.out and "| random |" in captured.out
    assert "probe dims: conv1 9600" in captured.err
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["results"]] == ["run", "random"]
    assert results["results"][1]["input_size"] == 32  # --random-init follows the checkpoint
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 10 and {r["layer"] for r in rows} == {f"conv{i}" for i in range(1, 6)}
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "results.md").read_text().count("| run |") == 2  # top-1 and top-5
    assert results["config"]["cache_features"] and results["config"]["augment"] is False


def _random_conv1(image_folder, out) -> list[str]:
    """A quick probe of the random network's conv1."""
    data = ["--data-dir", str(image_folder), "--out", str(out)]
    return ["probe", *"--random-init --size 32 --layers conv1".split(), *data, *FAST]


def test_rerun_of_a_finished_probe_reuses_its_state(image_folder, tmp_path, monkeypatch):
    from sslx.probe import features, run

    args = _random_conv1(image_folder, tmp_path)
    assert main(args) == 0
    first = json.loads((tmp_path / "results.json").read_text())["results"][0]
    state = next((tmp_path / "state").iterdir())
    saved = state.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("a finished probe was computed again")

    monkeypatch.setattr(run, "train_probes", refuse)  # no training...
    monkeypatch.setattr(features.FrozenTrunk, "forward", refuse)  # ...nor features
    assert main(args) == 0
    again = json.loads((tmp_path / "results.json").read_text())["results"][0]
    assert again["top1"] == first["top1"] and again["train_loss"] == first["train_loss"]
    assert state.stat().st_mtime_ns == saved


def test_viz_filters_writes_a_png(checkpoint, tmp_path):
    out = tmp_path / "filters.png"
    assert main(["viz", "filters", str(checkpoint), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def _foreign_checkpoint(path):
    torch.save({"state_dict": {}}, path)
    return path


def test_unknown_architecture_is_exit_2(checkpoint, image_folder, tmp_path, capsys):
    payload = torch.load(checkpoint / "checkpoint.pt", weights_only=False)
    payload["model"]["arch"] = "vgg16"
    torch.save(payload, tmp_path / "vgg.pt")
    args = [
        "probe",
        "--checkpoint",
        str(tmp_path / "vgg.pt"),
        "--data-dir",
        str(image_folder),
        "--out",
        str(tmp_path / "out"),
        *FAST,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "--arch must be one of alexnet, resnet18 (got 'vgg16')" in err
    ), err


def test_damaged_probe_state_and_zero_crop_ratio_are_exit_2(image_folder, tmp_path, capsys):
    args = _random_conv1(image_folder, tmp_path)
    assert main([*args, "--crop-ratio", "0"]) == 2
    assert "--crop-ratio" in capsys.readouterr().err
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "random.pt").write_bytes(b"not a torch file")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()  # after the data and dims lines: one error line
    assert "Traceback" not in err and err.splitlines()[-1].startswith("sslx: error:"), err
    assert "not a readable probe state" in err.splitlines()[-1], err


@pytest.mark.parametrize(
    "state, message",
    [
        ([1, 2, 3], "is a damaged probe state"),
        ({"fingerprint": "x", "epoch": "1"}, "is a damaged probe state"),
        ({"epoch": True, "probes": {}, "optimizer": {}, "scheduler": {}, "history": {}}, "damaged"),
        ({"epoch": 1, "probes": {}, "optimizer": {}, "scheduler": {}, "history": {}}, "another"),
    ],
)
def test_a_probe_state_of_the_wrong_shape_is_one_line(
    image_folder, tmp_path, capsys, state, message
):
    args = _random_conv1(image_folder, tmp_path)
    (tmp_path / "state").mkdir(exist_ok=True)
    torch.save(state, tmp_path / "state" / "random.pt")
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sslx: error:") and message in last, last
