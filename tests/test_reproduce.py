"""docs/reproduce.md and README.md at toy scale: every `bash` block, in order, through
the real CLI (the block runner is tests/doc_recipes.py).

Only the scale variables of a document's first block change (the data folder, the
number of patches, DeepCluster's k); every command runs exactly as documented. Blocks
fenced as `sh` (installing, running the tests, commands that need a GPU or an earlier
interruption) are shown but not run: the fence language is the marker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from doc_recipes import REPO, recipe_blocks, run_blocks, toy_data

RECIPE = REPO / "docs" / "reproduce.md"
README = REPO / "README.md"
TOY_SCALE = {"N": "256", "K": "4"}


def test_readme_examples_run_in_order_at_toy_scale(tmp_path):
    blocks = recipe_blocks(README.read_text())
    assert len(blocks) >= 3, "README.md lost its bash blocks"
    work = tmp_path / "work"
    run_blocks(blocks, toy_data(tmp_path / "data"), {"N": "256"}, work)
    assert json.loads((work / "shards" / "manifest.json").read_text())["num_samples"] == 256
    assert (work / "preview.jpg").stat().st_size > 0
    assert (work / "runs/rotnet64/checkpoint.pt").is_file()
    results = json.loads((work / "probes/results.json").read_text())
    assert [r["name"] for r in results["results"]] == ["rotnet64", "random"]
    assert (work / "rotnet-conv1.png").stat().st_size > 0


@pytest.mark.slow
def test_recipe_runs_end_to_end_at_toy_scale(tmp_path):
    blocks = recipe_blocks(RECIPE.read_text())
    assert len(blocks) >= 5, "docs/reproduce.md lost its bash blocks"
    work = tmp_path / "work"
    run_blocks(blocks, toy_data(tmp_path / "data"), TOY_SCALE, work)

    for name in ("shards-all", "shards-none"):
        manifest = json.loads((work / ".cache/repro" / name / "manifest.json").read_text())
        assert manifest["num_samples"] == 256
    runs = ["supervised", "rotnet-all", "deepcluster-all", "bigan-all", "rotnet-none"]
    for run in runs:
        assert (work / "runs/repro" / run / "checkpoint.pt").is_file()
        assert (work / "probes/repro" / f"filters-{run}.png").stat().st_size > 0

    probes = work / "probes/repro"
    results = json.loads((probes / "results.json").read_text())
    rows = {net["name"]: net for net in results["results"]}
    assert set(rows) == {"random", *runs}
    for net in rows.values():
        assert list(net["top1"]) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
        assert all(0 <= acc <= 1 for acc in net["top1"].values())
    table = (probes / "results.md").read_text()
    assert all(name in table for name in rows)
    assert (probes / "accuracy.png").stat().st_size > 0
