"""docs/architecture.md's worked example works: a copy of sslx plus the example's files
and its one registration line trains, logs its pretext measure, shows its option in
--help and resumes, through the real `sslx train`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from layout import REPO, package_places


def example_files() -> dict[str, str]:
    """The page's code blocks, by the path the line before each names."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text[text.index("### Adding a method: a worked example") :]
    section = section[: section.index("\n## ")]
    blocks = re.findall(r"`([\w/]+\.py)`:?\s*\n\n```python\n(.*?)```", section, re.S)
    return dict(blocks)


def copy_with_example(root: Path) -> Path:
    package = root / "sslx"  # imported from here as a namespace package, like the repo root
    package.mkdir(parents=True)
    for name in package_places():
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, package / name)
    files = example_files()
    registry = package / "train" / "methods" / "__init__.py"
    line = files.pop("train/methods/__init__.py").strip()
    text, count = re.subn(r"^REGISTERED = \([^)]*\)", line, registry.read_text(), flags=re.M)
    assert count == 1 and set(files) == {
        "train/methods/hflip/spec.py",
        "train/methods/hflip/method.py",
    }
    registry.write_text(text)
    (package / "train" / "methods" / "hflip").mkdir()
    (package / "train" / "methods" / "hflip" / "__init__.py").write_text("")
    for path, code in files.items():
        (package / path).write_text(code)
    return root


def sslx(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "sslx.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_worked_example_adds_a_method_with_one_folder_and_one_line(shards, tmp_path):
    root = copy_with_example(tmp_path / "copy")
    helped = sslx(root, "train", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "[hflip] Width of the MLP head" in helped.stdout
    assert "predict whether the image was mirrored" in helped.stdout
    run = tmp_path / "run"
    args = [
        "train",
        "--method",
        "hflip",
        "--shards",
        str(shards),
        "--hidden",
        "8",
        "--size",
        "32",
        "--classifier-width",
        "16",
        "--batch-size",
        "16",
        "--log-every",
        "1",
        "--workers",
        "0",
        "--quiet",
        "--out",
        str(run),
    ]
    done = sslx(root, *args, "--max-steps", "2")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records and all("flip_accuracy" in r for r in records if "loss" in r)
    assert "hidden: 8" in (run / "config.yaml").read_text()
    resumed = sslx(root, "train", "--out", str(run), "--resume", "--max-steps", "3", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    changed = sslx(root, "train", "--out", str(run), "--resume", "--hidden", "4")
    assert changed.returncode == 2 and "--hidden cannot change on --resume" in changed.stderr
