"""Running a document's `bash` blocks at toy scale, for the tests of README.md,
docs/reproduce.md and docs/ablation.md.

Only the scale variables and flags named by a test change, each in the first block that has
it; every command runs exactly as documented. Blocks fenced as `sh` are shown but not run:
the fence language is the marker.
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
    """A stand-in for ../shared/data: a photo named ameyoko.jpg (the Hubble
    image of tests/golden) and a CIFAR-10-shaped archive of 30 noisy 32 px images per class."""
    (root / "images").mkdir(parents=True)
    shutil.copy(
        REPO / "tests" / "golden" / "hubble_deep_field.jpg", root / "images" / "ameyoko.jpg"
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


def set_flag(block: str, flag: str, value: str) -> str:
    """The value after `flag` (e.g. `--n 10000`) in `block` set to `value`."""
    pattern = rf"(?<=\s){re.escape(flag)} \S+"
    assert re.search(pattern, block), f"the recipe no longer passes {flag}"
    return re.sub(pattern, f"{flag} {shlex.quote(value)}", block, count=1)


def without_install(block: str) -> str:
    """The README's one-line first command without its install part: the tests run in an
    installed environment already. The install must be .ci/run's (checked here)."""
    if INSTALL not in block:
        return block
    assert CI_INSTALL in (REPO / ".ci" / "run").read_text(), "README and .ci/run install apart"
    return block.replace(INSTALL, "")


# The README's first command starts with this; .ci/run installs the same way.
INSTALL = 'python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[dev]" && '
INSTALL += ". .venv/bin/activate && "
CI_INSTALL = '.venv/bin/pip install -q -c constraints.txt -e ".[dev]"'


def run_blocks(
    blocks: list[str], data: Path, scale: dict[str, str], work: Path, timeout: int = 900
) -> None:
    """The blocks as one bash script in `work`. Each scale setting changes the first block
    that has it: `NAME` a variable set there, `--flag` a flag's value; DATA is `data`."""
    blocks = [without_install(block) for block in blocks]
    for name, value in {"DATA": str(data), **scale}.items():
        change = set_flag if name.startswith("--") else set_variable
        key = f" {name} " if name.startswith("--") else f"\n{name}="
        k = next((k for k, b in enumerate(blocks) if key in f"\n{b}"), None)
        if k is None and name == "DATA":
            continue  # blocks that read no shared data
        blocks[k or 0] = change(blocks[k or 0], name, value)
    script = "\n".join(["set -euo pipefail", *blocks])
    work.mkdir()
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
