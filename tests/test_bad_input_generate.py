"""`sslx generate` on bad input: one `sslx: error:` line, exit 2, nothing written (issue 15).

One row per case: arguments (`{name}` runs the setup of that name, see SETUPS) and a
fragment of the expected message. `{ro}` is a read-only folder, `{tmp}` the test folder."""

import errno
import os

import pytest
from PIL import Image

from sslx.cli import main
from sslx.common.locks import FolderLock
from sslx.datagen import shards


def _image_dir(t):
    (t / "photos").mkdir()
    Image.new("RGB", (320, 240), (90, 120, 30)).save(t / "photos" / "a.png")
    return t / "photos"


def _truncated_png(t):
    Image.new("RGB", (320, 240), (90, 120, 30)).save(t / "t.png")
    (t / "t.png").write_bytes((t / "t.png").read_bytes()[:100])
    return t / "t.png"


def _dataset(t):
    out = t / "dataset"
    assert (
        main([*"generate --n 10 --size 32 --out".split(), str(out), *"--quiet --workers 1".split()])
        == 0
    )
    return out


HELD = []  # locks a setup holds for the rest of the session: "another process" writing


def _damaged_shard(t):
    """A dataset whose manifest is not written yet and one of whose shards is garbage."""
    out = _dataset(t)
    (out / "manifest.json").unlink()
    (out / "shard-000000.tar").write_bytes(b"not a tar file" * 100)
    return out


def _locked_dataset(t):
    out = _dataset(t)
    HELD.append(FolderLock(out, "part-1-of-1"))  # the same command, still running
    return out


def put(path, data: bytes = b"x"):
    """Write `data` to `path`, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


SETUPS = {
    "bad_jpeg": lambda t: put(t / "bad.jpg", b"\xff\xd8\xff\xe0 not a jpeg"),
    "truncated_png": _truncated_png,
    "empty_dir": lambda t: put(t / "empty" / ".hidden").parent,
    "file": lambda t: put(t / "file"),
    "foreign": lambda t: put(t / "foreign" / "a.csv").parent,
    "photos": _image_dir,
    "dataset": _dataset,
    "locked": _locked_dataset,
    "damaged_shard": _damaged_shard,
    "garbage_config": lambda t: put(t / "half" / shards.CONFIG_NAME, b'{"config": ').parent,
    "deep_config": lambda t: (
        put(t / "deep" / shards.CONFIG_NAME, b"[" * 50_000 + b"]" * 50_000).parent
    ),
}


OUT = ["--out", "{tmp}/out"]
CASES = [
    (["--n", "10"], "Missing option '--out'"),  # on every click the bound allows
    (["--n", "0", *OUT], "--n must be >= 1"),
    (["--n", "ten", *OUT], "ten"),
    (["--image", "/no/such.jpg", *OUT], "image not found"),
    (["--image", "{bad_jpeg}", *OUT], "bad.jpg is corrupt or truncated"),
    (["--image", "{truncated_png}", *OUT], "t.png is corrupt or truncated"),
    (["--image", "{empty_dir}", *OUT], "no image files"),
    (["--part", "2/2", *OUT], "--part"),
    (["--part", "x", *OUT], "--part must look like i/k"),
    (["--size", "8", *OUT], "--size"),
    (["--jpeg-quality", "0", *OUT], "--jpeg-quality"),
    (["--crop-scale-min", "0", *OUT], "--crop-scale-min"),
    (["--hue", "0.9", *OUT], "--hue"),
    (["--preset", "bogus", *OUT], "bogus"),
    (["--preview", "/no/dir/grid.png", *OUT], "--preview"),
    (["--preview", "{tmp}/grid.txt", *OUT], "--preview must end in .png"),
    (["--workers", "0", *OUT], "--workers"),
    (["--seed", "-1", *OUT], "--seed must be >= 0"),
    (["--out", "{file}"], "exists and is not a folder"),
    (["--out", "{foreign}"], "is not empty"),
    (["--out", "{garbage_config}"], "is unreadable"),
    (["--out", "{locked}"], "dataset is being written by process"),
    (
        [*"--image {photos} --preview {photos}/preview.png".split(), *OUT],
        "it would become a source photo",
    ),
    (["--out", "{damaged_shard}"], "shard-000000.tar is not a readable shard (file could not"),
    (["--out", "{deep_config}"], "is unreadable"),  # JSON nested 50,000 deep
    ([*"--seed 1 --out {dataset}".split()], "different dataset (differs in: config.seed)"),
    ([*"--image {photos} --out {photos}".split()], "overlaps the input --image"),
    ([*"--image {photos} --out {photos}/shards".split()], "overlaps the input --image"),
    ([*"--image {photos}/.. --out {tmp}".split()], "overlaps the input --image"),
    (["--out", "{ro}/out"], "cannot write {ro}/out: Read-only file system"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_input(bad_input, args, message):
    base = [*"generate --n 10 --size 32 --workers 1 --quiet".split()]
    bad_input([*base, *args], message, SETUPS)


def test_full_disk_is_one_line_and_leaves_no_partial_shard(tmp_path, capsys, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shards._HashingFile, "write", full)
    out = tmp_path / "out"
    code = main([*"generate --n 10 --size 32 --workers 1 --quiet --out".split(), str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot write {out / shards.shard_name(0)}: No space left on device" in err, err
    assert sorted(p.name for p in out.iterdir()) == [shards.CONFIG_NAME]  # no shard, no temp


def test_a_stray_eof_error_is_an_error_not_an_interrupt(tmp_path, capsys, monkeypatch):
    """click turns EOFError into Abort; only a real Ctrl-C is "interrupted" (exit 130)."""

    def truncated(*args, **kwargs):
        raise EOFError("Ran out of input")

    monkeypatch.setattr("sslx.datagen.pipeline.load_sources", truncated)
    code = main(
        [*"generate --n 10 --size 32 --workers 1 --quiet --out".split(), str(tmp_path / "out")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("sslx: error: a file ended early"), err
    assert "interrupted" not in err and len(err.splitlines()) == 1
