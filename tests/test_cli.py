"""The CLI: the documented command works (bad input: tests/test_bad_input_generate.py)."""

import json
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sslx.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_generate_with_the_built_in_image(tmp_path):
    result = run(
        "generate",
        "--n",
        "20",
        "--size",
        "32",
        "--out",
        str(tmp_path / "s"),
        "--workers",
        "1",
        "--preset",
        "scale",
        "--no-flip",
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["sources"][0]["name"] == "hubble_deep_field.jpg"
    augment = manifest["config"]["augment"]
    assert (augment["scale"], augment["rotation"], augment["color"], augment["flip"]) == (
        True,
        False,
        False,
        False,
    )
    assert "dataset complete" in result.stderr


def test_console_script_and_help():
    result = run("generate", "--help")
    assert result.returncode == 0
    for flag in ["--no-scale", "--no-rotation", "--no-flip", "--no-color", "--part", "--preset"]:
        assert flag in result.stdout
