"""Running a document's `bash` blocks at toy scale, for the tests of README.md,
docs/reproduce.md and docs/ablation.md.

Only the scale variables of a document's first block change; every command runs exactly as
documented. Blocks fenced as `sh` are shown but not run: the fence language is the marker.
Import it after `sys.path.insert(0, str(Path(__file__).parent))` (pytest's importlib mode
puts no test folder on the path).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def recipe_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)


def set_variable(block: str, name: str, value: str) -> str:
    """`NAME=value` (or `NAME="a b"`) at the start of a line of `block` set to `value`."""
    pattern = rf'^{name}=("[^"\n]*"|\S+)'
    assert re.search(pattern, block, flags=re.M), f"the recipe no longer sets {name}"
    return re.sub(pattern, lambda _: f"{name}={shlex.quote(value)}", block, count=1, flags=re.M)


def toy_data(root: Path) -> Path:
    """A stand-in for ../shared/data: a photo named ameyoko.jpg (the shipped Hubble
    image) and a CIFAR-10-shaped archive of 30 noisy 32 px images per class."""
    (root / "images").mkdir(parents=True)
    shutil.copy(
        REPO / "datagen" / "assets" / "hubble_deep_field.jpg", root / "images" / "ameyoko.jpg"
    )
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


def checkout_env() -> dict[str, str]:
    """The environment for the blocks: this interpreter's `bin` first on PATH, so `sslx` is
    its console script, and the sslx under test found first. The console script imports
    whatever its install points at (an editable install: maybe another checkout). When the
    tests found sslx through a sys.path entry (a checkout linked as `sslx` into a folder on
    PYTHONPATH), that entry goes first on the blocks' PYTHONPATH, which Python searches
    before site-packages and editable finders; a plain install is left as it is."""
    import sslx.cli

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    package = Path(sslx.cli.__file__).parent  # not resolved: a link named sslx stays one
    if package.name == "sslx" and str(package.parent) in sys.path:
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(package.parent), *rest])
    return env


def run_blocks(blocks: list[str], data: Path, scale: dict[str, str], work: Path) -> None:
    """The blocks as one bash script in `work`, with the first block's scale variables set."""
    first = set_variable(blocks[0], "DATA", str(data))
    for name, value in scale.items():
        first = set_variable(first, name, value)
    script = "\n".join(["set -euo pipefail", first, *blocks[1:]])
    work.mkdir()
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
