"""The CLI: the documented command works (bad input: tests/test_bad_input_generate.py)."""

import json
import subprocess
import sys

import pytest

from sslx.cli import main


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
    assert manifest["sources"][0]["name"] == "coffee.png"
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
    for flag in [*"--no-scale --no-rotation --no-flip --no-color --part --preset".split()]:
        assert flag in result.stdout


HELP_WITHOUT_TORCH = """
import sys
import click
from sslx.cli import cli

def helps(group, ctx):
    yield group.get_help(ctx)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        with click.Context(command, info_name=name, parent=ctx) as sub:
            if isinstance(command, click.Group):
                yield from helps(command, sub)
            else:
                yield command.get_help(sub)

with click.Context(cli, info_name="sslx") as ctx:
    texts = list(helps(cli, ctx))
heavy = sorted({"torch", "torchvision", "numpy", "cv2"} & set(sys.modules))
print(len(texts), heavy)
"""


def test_every_help_is_built_without_importing_torch():
    result = subprocess.run(
        [sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    # sslx, generate, probe, train, viz, viz ablation, viz filters, viz modern,
    # viz neighbours, viz style
    assert result.stdout.split() == ["10", "[]"], result.stdout


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["train"],
        ["probe"],
        ["viz"],
        ["viz", "filters"],
        ["viz", "ablation"],
        ["viz", "modern"],
        ["viz", "style"],
        ["viz", "neighbours"],
    ],
)
def test_help_of_every_command(command):
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: sslx {' '.join(command)}".rstrip())


def test_generate_without_room_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import shutil

    from sslx.datagen import estimate

    full = shutil.disk_usage(tmp_path)._replace(free=0)
    monkeypatch.setattr(estimate.shutil, "disk_usage", lambda path: full)
    assert main([*"generate --n 20 --size 32 --out".split(), str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sslx: error: not enough disk space"), err


@pytest.mark.parametrize(
    "text, message",
    [
        ("plain message", "plain message"),
        (
            "Caught InputError in DataLoader worker process 0.\nOriginal Traceback (most recent "
            'call last):\n  File "x.py", line 1, in f\nsslx.errors.InputError: cannot decode '
            "image a/bad.jpg: not a readable image file\n",
            "cannot decode image a/bad.jpg: not a readable image file",
        ),
        ("Caught X in DataLoader worker process 1.\nOriginal Traceback\nX", "X"),
    ],
)
def test_an_error_from_a_loader_worker_is_its_own_message(text, message):
    from sslx.errors import InputError, worker_message

    assert worker_message(text) == message
    assert str(InputError(text)) == message
