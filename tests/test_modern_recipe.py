"""docs/modern.md's recipe at toy scale: every `bash` block, in order, through the real
CLI (the block runner is tests/doc_recipes.py). Only the first block's variables change:
tiny N and batch, one epoch, one seed, one preset, and one method per architecture (the
table's spread over seeds is tested in tests/probe/test_modern.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from doc_recipes import REPO, recipe_blocks, run_blocks, toy_data

RECIPE = REPO / "docs" / "modern.md"
TOY_SCALE = {
    "N": "64",
    "SEEDS": "0",
    "PRESETS": "none",
    "METHODS": "dino",
    "RESNET_METHODS": "simclr",
    "BATCH": "32",
    "EPOCHS": "1",
    "DINO_EPOCHS": "1",
    "RESNET_EPOCHS": "1",
    "SUP_EPOCHS": "1",
    "DINO_FLAGS": "--local-crops 1 --out-dim 64",
}
CONVS = ["conv1", "conv2", "conv3", "conv4"]
RESNET_TAPS = ["stem", "layer1", "layer2", "layer3", "layer4"]


def test_recipe_runs_end_to_end_at_toy_scale(tmp_path):
    blocks = recipe_blocks(RECIPE.read_text())
    assert len(blocks) == 7, "docs/modern.md lost or gained a bash block"
    work = tmp_path / "work"
    run_blocks(blocks, toy_data(tmp_path / "data"), TOY_SCALE, work)

    runs = ["dino-none-seed0", "simclr-resnet18-none-seed0", "supervised-seed0"]
    for run in runs:
        assert (work / "runs/modern" / run / "checkpoint.pt").is_file()
    probes = work / "probes/modern"
    for name in [*runs, "random", "random-resnet18"]:
        (found,) = json.loads((probes / name / "results.json").read_text())["results"]
        assert found["name"] == name
        assert list(found["top1"]) == (RESNET_TAPS if "resnet18" in name else CONVS)

    table = json.loads((probes / "modern.json").read_text())
    rows = [(r["arch"], r["method"], r["preset"], r["n"]) for r in table["rows"]]
    assert rows == [
        ("alexnet", "supervised", None, 1),
        ("alexnet", "random", None, 1),
        ("alexnet", "dino", "none", 1),
        ("resnet18", "random", None, 1),
        ("resnet18", "simclr", "none", 1),
    ]
    (dino,) = table["rows"][2]["networks"]
    assert len(dino["epochs"]) == 1 and dino["epochs"][0]["embedding_std"] > 0
    assert "teacher_entropy" in dino["epochs"][0]
    assert dino["pretext"]["metric"] == "view_agreement"
    text = (probes / "modern.md").read_text()
    assert "## AlexNet" in text and "## ResNet-18" in text and "| DINO, none | 1 |" in text
    assert "| simclr-resnet18-none-seed0 | " in text  # its collapse line
    assert (probes / "modern.png").read_bytes()[:4] == b"\x89PNG"
