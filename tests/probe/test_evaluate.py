"""`sslx probe --eval linear,knn,cluster` through the CLI: one entry point, the same
networks, data, layers and feature cache as the linear probe, and resumable results."""

import csv
import json

import pytest

from sslx.cli import main
from sslx.common import knn
from sslx.probe import evaluate, features, run

FAST = "--epochs 1 --batch-size 32 --lr-milestones 1 --workers 0 --quiet".split()
SETTINGS = ["k20_t0.07", "k200_t0.1"]


def _args(folder, out, evals: str, layers: str = "conv1,conv2") -> list[str]:
    data = ["--data-dir", str(folder), "--out", str(out)]
    random = [*"--random-init --size 32 --layers".split(), layers]
    return ["probe", *random, *data, *FAST, "--eval", evals]


def _results(out) -> dict:
    return json.loads((out / "results.json").read_text())


def _refuse(*args, **kwargs):
    raise AssertionError("computed again")


def test_knn_and_cluster_alone_train_no_probe_and_write_every_output(
    knn_image_folder, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(run, "train_probes", _refuse)
    out = tmp_path / "out"
    assert main(_args(knn_image_folder, out, "cluster,knn")) == 0  # in any order
    entry = _results(out)["results"][0]
    assert _results(out)["config"]["evals"] == ["knn", "cluster"]
    assert entry["top1"] == {} and entry["train_loss"] == {}
    assert list(entry["knn"]) == ["conv1", "conv2"]
    for layer in ("conv1", "conv2"):
        assert list(entry["knn"][layer]) == SETTINGS
        assert all(0 <= s["top1"] <= 1 for s in entry["knn"][layer].values())
        scores = entry["cluster"][layer]
        assert {"nmi", "ami", "ari", "nmi_restarts", "ami_restarts", "ari_restarts"} <= set(scores)
        assert len(scores["ari_restarts"]) == 3
    markdown = (out / "results.md").read_text()
    for title in ("kNN top-1, k20_t0.07 (%)", "kNN top-1, k200_t0.1 (%)", "NMI", "AMI", "ARI"):
        assert f"| {title}" in markdown
    assert "top1 (%)" not in markdown  # no linear table without linear probes
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted({r["eval"] for r in rows}) == ["cluster", "knn_k200_t0.1", "knn_k20_t0.07"]
    assert len(rows) == 6
    knn = next(r for r in rows if r["eval"] == "knn_k20_t0.07" and r["layer"] == "conv2")
    assert float(knn["top1"]) == pytest.approx(entry["knn"]["conv2"]["k20_t0.07"]["top1"], 1e-3)
    for picture in ("knn.png", "cluster.png"):
        assert (out / picture).read_bytes()[:4] == b"\x89PNG"
    assert not (out / "accuracy.png").exists()
    assert sorted(p.name for p in (out / "state").iterdir()) == [
        "random.cluster.json",
        "random.knn.json",
    ]
    assert "wrote " + str(out) + "/knn.png, cluster.png" in capsys.readouterr().err


def test_a_rerun_skips_finished_layers_and_computes_only_new_ones(
    knn_image_folder, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    assert main(_args(knn_image_folder, out, "knn,cluster", "conv1")) == 0
    first = _results(out)["results"][0]
    monkeypatch.setattr(features.FrozenTrunk, "forward", _refuse)  # no features either
    monkeypatch.setattr(evaluate, "knn_accuracies", _refuse)
    monkeypatch.setattr(evaluate, "cluster_quality", _refuse)
    assert main(_args(knn_image_folder, out, "knn,cluster", "conv1")) == 0
    again = _results(out)["results"][0]
    assert again["knn"] == first["knn"] and again["cluster"] == first["cluster"]
    monkeypatch.undo()
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("device"))
        return knn.knn_accuracies(*args, **kwargs)

    monkeypatch.setattr(evaluate, "knn_accuracies", counted)
    assert main(_args(knn_image_folder, out, "knn", "conv1,conv3")) == 0
    assert len(calls) == 1  # conv3 only: conv1's kNN is in the state
    both = _results(out)["results"][0]
    assert both["knn"]["conv1"] == first["knn"]["conv1"] and "conv3" in both["knn"]


def test_a_changed_setting_never_reuses_old_numbers(knn_image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_args(knn_image_folder, out, "cluster", "conv1")) == 0
    for change in (["--crop-ratio", "0.5"], ["--seed", "3"], ["--split-seed", "1"]):
        capsys.readouterr()
        assert main([*_args(knn_image_folder, out, "cluster", "conv1"), *change]) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("sslx: error: ") and "random.cluster.json is an evaluation" in last


def test_linear_and_knn_share_one_extraction_and_a_finished_probe(
    knn_image_folder, tmp_path, monkeypatch
):
    extracted = []

    def counting(*args, **kwargs):
        extracted.append(kwargs["name"])
        return real(*args, **kwargs)

    real = features.extract_features
    monkeypatch.setattr(features, "extract_features", counting)
    out = tmp_path / "out"
    assert main([*_args(knn_image_folder, out, "linear"), "--cache-features"]) == 0
    linear = _results(out)["results"][0]
    assert extracted == ["train", "val"] and "knn" not in linear
    extracted.clear()
    monkeypatch.setattr(run, "train_probes", _refuse)  # the finished probe is reused...
    assert main([*_args(knn_image_folder, out, "linear,knn"), "--cache-features"]) == 0
    both = _results(out)["results"][0]
    assert both["top1"] == linear["top1"] and both["train_loss"] == linear["train_loss"]
    assert extracted == ["train", "val"]  # ...and kNN extracts its features once
    extracted.clear()
    monkeypatch.undo()
    monkeypatch.setattr(features, "extract_features", counting)
    fresh = tmp_path / "fresh"
    assert main([*_args(knn_image_folder, fresh, "linear,knn"), "--cache-features"]) == 0
    assert extracted == ["train", "val"]  # one extraction serves the probes and kNN
    assert _results(fresh)["results"][0]["knn"] == both["knn"]
    rows = list(csv.DictReader((fresh / "results.csv").open()))
    assert [r["eval"] for r in rows].count("linear") == 2  # conv1, conv2


def test_a_damaged_evaluation_state_is_one_line(knn_image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "state").mkdir(parents=True)
    for text, message in [("{", "is not a readable evaluation state"), ("[]", "damaged")]:
        (out / "state" / "random.knn.json").write_text(text)
        assert main(_args(knn_image_folder, out, "knn", "conv1")) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("sslx: error: ") and message in last, last
