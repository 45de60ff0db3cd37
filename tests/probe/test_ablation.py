"""`sslx viz ablation`: placing networks in the paper's rows, the cells, the criterion and
the files (bad input: tests/probe/test_bad_input_viz.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sslx.cli import main
from sslx.datagen.config import PRESETS
from sslx.errors import InputError
from sslx.probe.ablation import LAYERS, ROWS, collect, criterion, markdown, place

REPO = Path(__file__).resolve().parents[2]
PAPER = {row.key: row.paper for row in ROWS}


def probe_dir(folder: Path, networks: dict[str, tuple[float, ...]], **meta: dict) -> Path:
    """A probe --out folder whose results.json holds these top-1 values (%) per network."""
    folder.mkdir(parents=True)
    results = [
        {
            "name": name,
            "dims": dict(zip(LAYERS, (9600, 9216, 3456, 3456), strict=True)),
            "top1": {layer: v / 100 for layer, v in zip(LAYERS, values, strict=True)},
        }
        for name, values in networks.items()
    ]
    payload = {"data": {"val": "held out 0.1"}, "config": {"epochs": 36}, **meta}
    payload["results"] = results
    (folder / "results.json").write_text(json.dumps(payload))
    return folder


@pytest.mark.parametrize(
    ("name", "letter", "method", "seed"),
    [
        ("supervised", "a", None, None),
        ("supervised-seed3", "a", None, 3),
        ("random", "b", None, None),
        ("random-seed1", "b", None, 1),
        ("bigan-none-seed0", "c", "bigan", 0),
        ("bigan-jitter-seed0", "d", "bigan", 0),
        ("bigan-rotation-seed2", "e", "bigan", 2),
        ("bigan-scale-seed0", "f", "bigan", 0),
        ("my-bigan-rot+jitter-seed12", "g", "my-bigan", 12),
        ("bigan-rot+scale-seed0", "h", "bigan", 0),
        ("bigan-jitter+scale-seed1", "i", "bigan", 1),
        ("x-all-seed0", "j", "x", 0),
    ],
)
def test_names_place_networks_in_rows(name, letter, method, seed):
    row, got_method, got_seed = place(name, Path("p"))
    assert (row.letter, got_method, got_seed) == (letter, method, seed)


UNPLACEABLE = [
    *[
        *(
            "rotnet-all all-seed0 bigan-blur-seed0 bigan-all-seed0-2 "
            "supervised-2 random-init bigan-released-seed0 "
            "bigan-all-seedx"
        ).split()
    ]
]


@pytest.mark.parametrize("name", UNPLACEABLE)
def test_names_it_cannot_place_are_refused(name):
    with pytest.raises(InputError, match=f"cannot place network '{re.escape(name)}'"):
        place(name, Path("p"))


def test_the_rows_are_generates_presets_and_the_papers_table():
    assert [row.key for row in ROWS[2:]] == [p for p in PRESETS if p != "released"]
    doc = (REPO / "docs" / "ablation.md").read_text()
    for row in ROWS:  # the page's copy of the paper's numbers is this one
        cells = " | ".join(f"{v:.1f}" for v in row.paper)
        assert f"| ({row.letter}) {row.label} | {cells} |" in doc


def test_cells_are_mean_and_half_range_over_seeds_from_several_folders(tmp_path):
    first = probe_dir(tmp_path / "p1", {"bigan-none-seed0": (50, 50, 40, 30), "random": (55,) * 4})
    second = probe_dir(
        tmp_path / "p2",
        {"bigan-none-seed1": (53, 52, 40, 31), "bigan-none-seed2": (51, 51, 43, 32)},
    )
    rows = collect([first, second])
    assert [r.row.letter for r in rows] == ["b", "c"]
    none = rows[1]
    assert [n.name for n in none.networks] == [f"bigan-none-seed{k}" for k in range(3)]
    assert none.mean("conv1") == pytest.approx(154 / 3)
    assert none.spread("conv1") == pytest.approx(1.5)  # (53 - 50) / 2
    assert none.spread("conv3") == pytest.approx(1.5)
    assert rows[0].spread("conv1") == 0


def test_folders_may_differ_in_the_datas_path_and_the_layers_but_not_the_protocol(tmp_path):
    nets = {"bigan-all-seed0": (60,) * 4}
    first = probe_dir(tmp_path / "p1", nets, data={"val": "v", "data_dir": "a"})
    other = {"bigan-all-seed1": (61,) * 4}
    moved = probe_dir(
        tmp_path / "p2",
        other,
        data={"val": "v", "data_dir": "/elsewhere/a"},
        config={"epochs": 36, "layers": [*LAYERS, "conv5"]},
    )
    assert len(collect([first, moved])[0].networks) == 2
    shorter = probe_dir(tmp_path / "p3", other, data={"val": "v"}, config={"epochs": 10})
    with pytest.raises(InputError, match=r"different settings \(epochs: 10 vs 36\)"):
        collect([first, shorter])


def test_the_criterion_on_the_papers_own_numbers_passes_with_its_margins(tmp_path):
    folder = probe_dir(
        tmp_path / "p", {f"bigan-{key}-seed0": PAPER[key] for key in PRESETS if key != "released"}
    )
    result = criterion(collect([folder]))
    margins = [result["layers"][layer]["margin"] for layer in ("conv1", "conv2", "conv3")]
    assert margins == pytest.approx([2.7, 5.7, 6.9])
    assert result["layers"]["conv1"]["lowest_scale_row"] == "h"
    assert result["layers"]["conv1"]["highest_other_row"] == "g"
    assert [result["layers"][x]["verdict"] for x in ("conv1", "conv2", "conv3")] == ["PASS"] * 3
    assert result["met"] is True
    assert result["rows_with_one_network"] == list("cdefghij")
    without_g = criterion([r for r in collect([folder]) if r.row.letter != "g"])
    assert [without_g["layers"][x]["paper_margin"] for x in ("conv1", "conv2", "conv3")] == (
        pytest.approx([6.2, 10.5, 10.9])
    )


def test_a_margin_within_the_spread_fails(tmp_path):
    folder = probe_dir(
        tmp_path / "p",
        {
            "bigan-none-seed0": (50, 50, 50, 50),
            "bigan-none-seed1": (52, 50, 50, 50),
            "bigan-scale-seed0": (58, 49.5, 49, 50),
            "bigan-scale-seed1": (64, 53.5, 49, 50),
        },
    )
    result = criterion(collect([folder]))
    conv1, conv2, conv3 = (result["layers"][x] for x in ("conv1", "conv2", "conv3"))
    assert (conv1["margin"], conv1["largest_spread"]) == pytest.approx((10, 3))  # 61 vs 51
    assert conv1["verdict"] == "PASS"
    # The sign is right at conv2 (51.5 vs 50), but the scale seeds lie 2 points either side.
    assert (conv2["margin"], conv2["largest_spread"]) == pytest.approx((1.5, 2))
    assert conv2["verdict"] == "FAIL"
    assert conv3["margin"] == pytest.approx(-1) and conv3["verdict"] == "FAIL"
    assert result["met"] is False and result["rows_with_one_network"] == []
    # Margin 3 both times; the largest spread is 2.5, then 3.5.
    for k, (none, scale, verdict) in enumerate(
        [((50, 55), (55, 56), "PASS"), ((50, 57), (56, 57), "FAIL")]
    ):
        folder = probe_dir(
            tmp_path / f"q{k}",
            {
                "bigan-none-seed0": (none[0],) * 4,
                "bigan-none-seed1": (none[1],) * 4,
                "bigan-all-seed0": (scale[0],) * 4,
                "bigan-all-seed1": (scale[1],) * 4,
            },
        )
        conv1 = criterion(collect([folder]))["layers"]["conv1"]
        assert conv1["margin"] == pytest.approx(3) and conv1["verdict"] == verdict


def test_without_a_row_of_each_kind_the_criterion_is_not_evaluated(tmp_path):
    folder = probe_dir(tmp_path / "p", {"supervised": (60,) * 4, "bigan-all-seed0": (61,) * 4})
    rows = collect([folder])
    result = criterion(rows)
    assert result["met"] is None
    assert {c["verdict"] for c in result["layers"].values()} == {"n/a"}
    text = markdown(rows, result, [folder])
    assert "**not evaluated**" in text and "n/a" in text
    assert "| (a) fully supervised | 1 | 60.0 ± 0.0 (66.5) |" in text
    assert "(c)" not in text.split("## The paper's criterion")[0]


def test_the_command_writes_the_table_its_json_and_the_plot(tmp_path, capsys):
    folder = probe_dir(
        tmp_path / "probes",
        {
            "supervised-seed0": (61, 65, 64, 62),
            "supervised-seed1": (62, 66, 64, 61),
            "random": (59.3, 59.4, 56.2, 54.5),
            "bigan-none-seed0": (57, 58, 52, 49),
            "bigan-none-seed1": (58, 58, 52, 50),
            "bigan-all-seed0": (60, 64, 58, 55),
            "bigan-all-seed1": (61, 63, 57, 55),
        },
    )
    assert main(["viz", "ablation", str(folder), "--out", str(folder)]) == 0
    text = (folder / "ablation.md").read_text()
    assert capsys.readouterr().out == text
    assert "| (a) fully supervised | 2 | 61.5 ± 0.5 (66.5) | 65.5 ± 0.5 (70.1) |" in text
    assert "| (j) all | 2 | 60.5 ± 0.5 (68.1) |" in text
    assert "| conv1 | (j) 60.5 | (c) 57.5 | +3.0 | 0.5 | +10.2 | PASS |" in text
    assert "| conv2 | (j) 63.5 | (c) 58.0 | +5.5 | 0.5 | +16.1 | PASS |" in text
    assert "Criterion at conv1..conv3: **met**." in text
    table = json.loads((folder / "ablation.json").read_text())
    assert [row["row"] for row in table["rows"]] == ["a", "b", "c", "j"]
    conv4 = table["rows"][2]["top1"]["conv4"]
    assert (conv4["mean"], conv4["spread"], *conv4["values"]) == pytest.approx((49.5, 0.5, 49, 50))
    assert conv4["paper"] == 47.8
    assert table["criterion"]["met"] is True
    png = (folder / "ablation.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 10_000


def run_with_metrics(run: Path, lines: list[str]) -> str:
    """A run folder holding a checkpoint name and these metrics.jsonl lines; its path."""
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("\n".join(lines))
    return str((run / "checkpoint.pt").resolve())


def test_pretext_curves_come_from_each_runs_metrics_by_epoch(tmp_path):
    def logged(step, epoch, value):
        return json.dumps({"step": step, "epoch": epoch, "rotation_accuracy": value})

    easy = run_with_metrics(
        tmp_path / "runs/rotnet-all-seed0",
        [
            logged(1, 1, 0.5),
            logged(2, 1, 0.7),
            '{"step": 2, "event": "epoch_end", "epoch": 1}',
            logged(3, 2, 0.9),
            logged(4, 2, 0.95),
            '{"step": 4, "ev',  # a run cut mid-write
        ],
    )
    folder = probe_dir(
        tmp_path / "probes",
        {
            "random": (59, 59, 56, 54),
            "rotnet-all-seed0": (60, 64, 58, 55),
            "rotnet-none-seed0": (57, 58, 52, 49),
        },
    )
    payload = json.loads((folder / "results.json").read_text())
    payload["results"][1]["source"] = {"checkpoint": easy}
    payload["results"][2]["source"] = {"checkpoint": str(tmp_path / "moved/checkpoint.pt")}
    (folder / "results.json").write_text(json.dumps(payload))

    assert main(["viz", "ablation", str(folder), "--out", str(folder)]) == 0
    text = (folder / "ablation.md").read_text()
    assert "| rotnet-all-seed0 | (j) | rotation_accuracy (0.25) | 0.600 → 0.925 |" in text
    assert "rotnet-none-seed0 |" not in text.split("## Pretext curves")[1]  # no run to read
    networks = {
        n["name"]: n
        for r in json.loads((folder / "ablation.json").read_text())["rows"]
        for n in r["networks"]
    }
    assert networks["rotnet-all-seed0"]["pretext"]["epoch_means"] == pytest.approx([0.6, 0.925])
    assert networks["rotnet-none-seed0"]["pretext"] is None
    assert (folder / "ablation-pretext.png").read_bytes()[:4] == b"\x89PNG"
