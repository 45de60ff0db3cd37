"""The CLI: the documented command works; bad input is one line and exit code 2."""

import hashlib
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
    assert manifest["sources"][0]["name"] == "hubble_deep_field.jpg"
    augment = manifest["config"]["augment"]
    assert (augment["scale"], augment["rotation"], augment["color"], augment["flip"]) == (
        True,
        False,
        False,
        False,
    )
    assert "dataset complete" in result.stderr


def folder_digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(p.name.encode() + (p.read_bytes() if p.is_file() else b""))
    return h.hexdigest()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "0"], "--n must be at least 1"),
        (["--image", "/no/such.jpg"], "image not found"),
        (["--part", "2/2"], "--part"),
        (["--size", "8"], "--size"),
        (["--jpeg-quality", "0"], "--jpeg-quality"),
        (["--crop-scale-min", "0"], "--crop-scale-min"),
        (["--hue", "0.9"], "--hue"),
        (["--preset", "bogus"], "bogus"),
        (["--n", "ten"], "ten"),
        (["--preview", "/no/dir/grid.png"], "--preview"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["generate", "--out", str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_corrupt_image_and_foreign_folder_are_refused(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["generate", "--image", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jpg" in capsys.readouterr().err

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.csv").write_text("keep me")
    before = folder_digest(foreign)
    assert main(["generate", "--n", "5", "--size", "32", "--out", str(foreign)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert folder_digest(foreign) == before


def test_different_dataset_in_out_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["generate", "--n", "10", "--size", "32", "--out", str(out), "--quiet"]) == 0
    before = folder_digest(out)
    assert main(["generate", "--n", "10", "--size", "32", "--seed", "1", "--out", str(out)]) == 2
    assert "different dataset (differs in: config.seed)" in capsys.readouterr().err
    assert folder_digest(out) == before


def test_console_script_and_help():
    result = run("generate", "--help")
    assert result.returncode == 0
    for flag in ["--no-scale", "--no-rotation", "--no-flip", "--no-color", "--part", "--preset"]:
        assert flag in result.stdout


def test_generate_without_room_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import shutil

    from sslx.datagen import estimate

    full = shutil.disk_usage(tmp_path)._replace(free=0)
    monkeypatch.setattr(estimate.shutil, "disk_usage", lambda path: full)
    assert main(["generate", "--n", "20", "--size", "32", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sslx: error: not enough disk space"), err
