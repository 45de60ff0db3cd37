"""`sslx viz modern`: placing networks by name, one table per architecture, the cells, the
gap to random, and each run's collapse measures read from its metrics.jsonl."""

import json
from pathlib import Path

import pytest

from sslx.cli import main
from sslx.errors import InputError
from sslx.probe.modern import RowKey, collect_rows, place_network

CONVS = ("conv1", "conv2", "conv3", "conv4")
R18 = ("stem", "layer1", "layer2", "layer3", "layer4")


@pytest.mark.parametrize(
    ("name", "key", "seed"),
    [
        ("simclr-all-seed0", RowKey("alexnet", "simclr", "all"), 0),
        ("dino-resnet18-none-seed1", RowKey("resnet18", "dino", "none"), 1),
        ("rotnet-jitter+scale-seed3", RowKey("alexnet", "rotnet", "jitter+scale"), 3),
        ("random", RowKey("alexnet", "random"), None),
        ("random-resnet18", RowKey("resnet18", "random"), None),
        ("supervised-seed1", RowKey("alexnet", "supervised"), 1),
        ("supervised-resnet18-seed0", RowKey("resnet18", "supervised"), 0),
    ],
)
def test_names_place_networks_in_rows(name, key, seed):
    assert place_network(name, Path("p")) == (key, seed)


@pytest.mark.parametrize(
    "name",
    [
        "simclr-all",
        "simclr-resnet50-all-seed0",
        "moco-all-seed0",
        "random-vgg",
        "supervised-x-y",
        "all-seed0",
    ],
)
def test_names_it_cannot_place_are_refused(name):
    with pytest.raises(InputError, match="cannot place network"):
        place_network(name, Path("p"), "resnet18")


def test_a_name_without_an_arch_takes_the_recorded_one_and_a_wrong_one_is_refused():
    assert place_network("random", Path("p"), "resnet18") == (RowKey("resnet18", "random"), None)
    assert place_network("dino-all-seed0", Path("p"), "resnet18")[0].arch == "resnet18"
    with pytest.raises(InputError, match="named resnet18 but is an alexnet"):
        place_network("simclr-resnet18-all-seed0", Path("p"), "alexnet")


def _probe(root: Path, name: str, top1: dict, checkpoint: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    entry = {"name": name, "dims": dict.fromkeys(top1, 100), "top1": top1}
    if checkpoint is not None:
        entry["source"] = {"checkpoint": checkpoint}
    payload = {"data": {"val": "held out 0.1"}, "config": {"layers": list(top1)}}
    (folder / "results.json").write_text(json.dumps({**payload, "results": [entry]}))
    return folder


def _metrics(run: Path, epochs: list[dict], metric: str, values: list[float]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    lines = []
    for epoch, (record, value) in enumerate(zip(epochs, values, strict=True), start=1):
        lines.append({"step": 10 * epoch - 5, "epoch": epoch, metric: value})
        lines.append({"step": 10 * epoch, "event": "epoch_end", "epoch": epoch, **record})
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{cut")


def test_one_table_per_arch_with_mean_half_range_and_the_gap_to_random(tmp_path, capsys):
    folders = [
        _probe(tmp_path, "random", dict.fromkeys(CONVS, 0.50)),
        _probe(tmp_path, "simclr-all-seed0", dict.fromkeys(CONVS, 0.52)),
        _probe(tmp_path, "simclr-all-seed1", dict.fromkeys(CONVS, 0.56)),
        _probe(tmp_path, "dino-none-seed0", dict.fromkeys(CONVS, 0.49)),
        _probe(tmp_path, "random-resnet18", dict.fromkeys(R18, 0.40)),
        _probe(tmp_path, "simclr-resnet18-all-seed0", dict.fromkeys(R18, 0.45)),
    ]
    rows = collect_rows(folders)
    labels = [(r.key.arch, r.key.label, len(r.networks)) for r in rows]
    assert labels == [
        ("alexnet", "random", 1),
        ("alexnet", "SimCLR, all", 2),
        ("alexnet", "DINO, none", 1),
        ("resnet18", "random", 1),
        ("resnet18", "SimCLR, all", 1),
    ]
    simclr = rows[1]
    assert simclr.mean("conv2") == pytest.approx(54.0) and simclr.spread("conv2") == pytest.approx(
        2
    )

    out = tmp_path / "table"
    assert main(["viz", "modern", *map(str, folders), "--out", str(out)]) == 0
    text = (out / "modern.md").read_text()
    assert text == capsys.readouterr().out
    assert "| SimCLR, all | 2 | 54.0 ± 2.0 | 54.0 ± 2.0 | 54.0 ± 2.0 | 54.0 ± 2.0 |" in text
    assert "| DINO, none | 1 | 49.0 | 49.0 | 49.0 | 49.0 |" in text  # n = 1: no spread
    assert "| SimCLR, all | +4.0* | +4.0* | +4.0* | +4.0* |" in text  # 4 > spread 2
    assert "| DINO, none | -1.0 | -1.0 | -1.0 | -1.0 |" in text  # one seed: no verdict
    assert (
        "## ResNet-18" in text and "| SimCLR, all | 1 | 45.0 | 45.0 | 45.0 | 45.0 | 45.0 |" in text
    )
    table = json.loads((out / "modern.json").read_text())
    values = [r["top1"]["conv1"]["values"] for r in table["rows"][:2]]
    assert values == [[50.0], [52.0, pytest.approx(56.0)]]
    assert list(table["rows"][-1]["top1"]) == list(R18)
    assert (out / "modern.png").read_bytes()[:4] == b"\x89PNG"


def test_collapse_measures_come_from_the_run_or_the_probe_folder(tmp_path):
    run = tmp_path / "runs" / "dino-all-seed0"
    _metrics(
        run,
        [dict(embedding_std=0.5, embedding_rank=40.0), dict(embedding_std=0.004)],
        "view_agreement",
        [0.1, 0.3],
    )
    steps = [
        {"step": s, "epoch": e, "teacher_entropy": h} for s, e, h in [(3, 1, 7.8), (4, 1, 8.0)]
    ]
    steps.append({"step": 13, "epoch": 2, "teacher_entropy": 6.0})  # logged per step only
    with (run / "metrics.jsonl").open("a") as f:
        f.write("\n" + "\n".join(json.dumps(x) for x in steps) + "\n")
    moved = _probe(tmp_path / "p", "simclr-all-seed0", dict.fromkeys(CONVS, 0.5), "/gone/c.pt")
    _metrics(moved, [dict(embedding_std=0.3, embedding_rank=70.0)], "contrastive_accuracy", [0.05])
    folders = [
        _probe(tmp_path / "p", "dino-all-seed0", dict.fromkeys(CONVS, 0.5), str(run / "c.pt")),
        moved,
        _probe(tmp_path / "p", "byol-all-seed0", dict.fromkeys(CONVS, 0.5), "/gone/c.pt"),
    ]
    out = tmp_path / "table"
    assert main(["viz", "modern", *map(str, folders), "--out", str(out)]) == 0
    text = (out / "modern.md").read_text()
    assert (
        "| dino-all-seed0 | 0.500 → 0.004 | 40.0 | 7.90 → 6.00 "
        "| view_agreement: 0.100 → 0.300 |" in text
    )
    assert "| simclr-all-seed0 | 0.300 | 70.0 |  | contrastive_accuracy: 0.050 |" in text
    assert "byol-all-seed0 |" not in text  # no metrics anywhere: no line, no made-up numbers
    rows = json.loads((out / "modern.json").read_text())["rows"]
    nets = {n["name"]: n for r in rows for n in r["networks"]}
    assert nets["dino-all-seed0"]["epochs"][1] == {"embedding_std": 0.004, "teacher_entropy": 6.0}
    assert nets["byol-all-seed0"]["epochs"] == [] and nets["byol-all-seed0"]["pretext"] is None
