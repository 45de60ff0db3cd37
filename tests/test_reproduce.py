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
    run_blocks(blocks, toy_data(tmp_path / "data"), {"--n": "256"}, work)
    assert json.loads((work / "shards" / "manifest.json").read_text())["num_samples"] == 256
    assert (work / "preview.jpg").stat().st_size > 0
    assert (work / "runs/rotnet64/checkpoint.pt").is_file()
    results = json.loads((work / "probes/results.json").read_text())
    assert [r["name"] for r in results["results"]] == ["rotnet64", "random"]
    assert (work / "rotnet-conv1.png").stat().st_size > 0


# The README's rotation accuracy at the end of its run (chance: 0.25); see below.
QUICK_START_ROTATION_ACCURACY = 0.6


@pytest.mark.slow
def test_readme_quick_start_learns(tmp_path):
    """The README's first two blocks at their real scale (10,000 patches of the built-in
    photo, RotNet for 4 epochs): the run must learn, not sit at chance.

    The threshold: a run that learns nothing logs 0.25 +- 0.01 (each logged value is the
    mean of at least 4 steps x 768 rotated patches; the Hubble quick start this replaced
    stayed at 0.248). On 2 cores (docs/benchmarks.md) the last three logged values were
    0.86, 0.87 and 0.88, and the accuracy passed 0.6 by step 52 of 208, so 0.6 at the end
    leaves room for other CPUs' kernels and still fails a run that only starts to learn."""
    blocks = recipe_blocks(README.read_text())[:2]
    assert "sslx train" in blocks[1], "the README's second block is no longer the training run"
    work = tmp_path / "work"
    run_blocks(blocks, tmp_path, {}, work, timeout=3600)
    lines = (work / "runs/rotnet64/metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    accuracy = [row["rotation_accuracy"] for row in logged if "rotation_accuracy" in row]
    assert max(row["step"] for row in logged) == 208  # 4 epochs of 52 steps
    last = sum(accuracy[-3:]) / 3
    assert last >= QUICK_START_ROTATION_ACCURACY, f"rotation accuracy {last:.3f}: not learning"
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
