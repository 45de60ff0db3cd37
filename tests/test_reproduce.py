"""docs/reproduce.md and README.md at toy scale: every `bash` block, in order, through
the real CLI.

Only the scale variables of a document's first block change (the data folder, the
number of patches, DeepCluster's k); every command runs exactly as documented. Blocks
fenced as `sh` (installing, running the tests, commands that need a GPU or an earlier
interruption) are shown but not run: the fence language is the marker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "docs" / "reproduce.md"
README = REPO / "README.md"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")  # fmt: skip
TOY_SCALE = {"N": "256", "K": "4"}


def recipe_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)


def set_variable(block: str, name: str, value: str) -> str:
    pattern = rf"^{name}=\S+"
    assert re.search(pattern, block, flags=re.M), f"the recipe no longer sets {name}"
    return re.sub(pattern, f"{name}={value}", block, count=1, flags=re.M)


def toy_data(root: Path) -> Path:
    """A stand-in for ../shared/data: a photo named ameyoko.jpg (the shipped Hubble
    image) and a CIFAR-10-shaped archive of 30 noisy 32 px images per class."""
    (root / "images").mkdir(parents=True)
    shutil.copy(REPO / "datagen" / "assets" / "hubble_deep_field.jpg",
                root / "images" / "ameyoko.jpg")  # fmt: skip
    rng = np.random.default_rng(0)
    tree = root / "tree"
    for label, name in enumerate(CIFAR10_CLASSES):
        folder = tree / "cifar10" / "train" / name
        folder.mkdir(parents=True)
        colour = rng.integers(0, 256, 3)
        for i in range(30):
            pixels = np.clip(colour + rng.normal(0, 40, (32, 32, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{label}{i:03d}.jpg")
    with tarfile.open(root / "cifar10-train.tar.gz", "w:gz") as tar:
        tar.add(tree / "cifar10", arcname="cifar10")
    shutil.rmtree(tree)
    return root


def run_blocks(blocks: list[str], data: Path, scale: dict[str, str], work: Path) -> None:
    """The blocks as one bash script in `work`, with the first block's scale variables set."""
    first = set_variable(blocks[0], "DATA", str(data))
    for name, value in scale.items():
        first = set_variable(first, name, value)
    script = "\n".join(["set -euo pipefail", first, *blocks[1:]])
    work.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", script], cwd=work, env=env,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


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
