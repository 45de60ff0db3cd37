"""docs/ablation.md at toy scale: every `bash` block, in order, through the real CLI (the
block runner is tests/doc_recipes.py). Only the first block's variables change: tiny N,
two seeds, one epoch, and two presets (one without scale, one with) instead of eight."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from doc_recipes import REPO, checkout_env, recipe_blocks, run_blocks, toy_data

from sslx.datagen.config import PRESETS

RECIPE = REPO / "docs" / "ablation.md"
TOY_SCALE = {"N": "64", "SEEDS": "0 1", "EPOCHS": "1", "SUP_EPOCHS": "1", "PRESETS": "none scale"}
LAYERS = ["conv1", "conv2", "conv3", "conv4"]


def test_the_recipe_runs_every_ablation_preset_by_default():
    first = recipe_blocks(RECIPE.read_text())[0]
    presets = re.search(r'^PRESETS="([^"]*)"', first, flags=re.M)
    assert presets, "the first block no longer sets PRESETS"
    assert presets[1].split() == [p for p in PRESETS if p != "released"]


def test_the_blocks_run_the_sslx_the_tests_import(tmp_path, monkeypatch):
    import sslx.cli

    monkeypatch.delenv("PYTHONPATH", raising=False)  # the checkout must be found without it
    found = subprocess.run(
        ["bash", "-c", "python -c 'import sslx.cli; print(sslx.cli.__file__)'"],
        cwd=tmp_path,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == sslx.cli.__file__


def test_recipe_runs_end_to_end_at_toy_scale(tmp_path):
    blocks = recipe_blocks(RECIPE.read_text())
    assert len(blocks) == 6, "docs/ablation.md lost or gained a bash block"
    work = tmp_path / "work"
    run_blocks(blocks, toy_data(tmp_path / "data"), TOY_SCALE, work)

    runs = [f"rotnet-{p}-seed{s}" for p in ("none", "scale") for s in (0, 1)]
    runs += ["supervised-seed0", "supervised-seed1"]
    for run in runs:
        assert (work / "runs/ablation" / run / "checkpoint.pt").is_file()
    probes = work / "probes/ablation"
    results = {}  # one probe folder per network
    for name in [*runs, "random"]:
        found = json.loads((probes / name / "results.json").read_text())["results"]
        assert [r["name"] for r in found] == [name]
        results[name] = found[0]
    assert all(list(r["top1"]) == LAYERS for r in results.values())

    table = json.loads((probes / "ablation.json").read_text())
    rows = {row["row"]: row for row in table["rows"]}
    assert list(rows) == ["a", "b", "c", "f"]
    assert [rows[x]["n"] for x in rows] == [2, 1, 2, 2]
    for row in rows.values():  # each cell is the mean of its networks' probe results
        names = [n["name"] for n in row["networks"]]
        for layer in LAYERS:
            values = [100 * results[name]["top1"][layer] for name in names]
            assert abs(row["top1"][layer]["mean"] - sum(values) / len(values)) < 1e-9
    assert rows["f"]["top1"]["conv1"]["paper"] == 67.9
    verdicts = {layer: c["verdict"] for layer, c in table["criterion"]["layers"].items()}
    assert list(verdicts) == ["conv1", "conv2", "conv3"]
    assert set(verdicts.values()) <= {"PASS", "FAIL"}

    text = (probes / "ablation.md").read_text()
    for line in (
        "| (a) fully supervised | 2 |",
        "| (b) random | 1 |",
        "| (c) no augmentation | 2 |",
        "| (f) scale | 2 |",
    ):
        assert line in text
    assert "(j) all" not in text and "Criterion at conv1..conv3: **" in text
    assert (probes / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert "| rotnet-scale-seed1 | (f) | rotation_accuracy (0.25) |" in text  # its pretext
    assert (probes / "ablation-pretext.png").read_bytes()[:4] == b"\x89PNG"
