"""Shared test fixtures: real data from ../shared/data, small synthetic photos, and tiny
labelled datasets (a class-per-folder tree and torchvision's CIFAR pickles)."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sslx.common.labelled import CIFAR

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SSLX_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `gpu` are skipped where torch sees no CUDA device."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_tests:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def torchrun():
    """`torchrun(*args, nproc=2, timeout=600)`: run `args` (a script and its arguments, or
    "-m", a module, ...) under torch.distributed.run on this host; fails the test with the
    end of its stderr unless it exits 0, and returns the finished process."""

    def run(*args: str, nproc: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*launcher, "--nproc_per_node", str(nproc), *map(str, args)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    return run


@pytest.fixture(scope="session")
def shared_images() -> Path:
    path = SHARED_DATA / "images"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set SSLX_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    """A 320×240 synthetic 'photo' with structure at several scales and colours."""
    rng = np.random.default_rng(0)
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [
            127 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0),
            127 + 100 * np.sin((x + y) / 23.0),
            127 + 60 * np.cos(x / 3.0) + rng.normal(0, 20, (h, w)),
        ],
        axis=2,
    )
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
    return path


# Each class is a colour; the images are that colour plus noise, so probes can learn it.
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (50, 60, 210)}


def class_images(n_per_class: int, side: int, seed: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    images = {}
    for name, colour in COLOURS.items():
        base = np.array(colour, dtype=np.float32)
        noise = rng.normal(0, 40, (n_per_class, side, side, 3))
        images[name] = list(np.clip(base + noise, 0, 255).astype(np.uint8))
    return images


def make_image_folder(root: Path, n_per_class: int = 20, side: int = 24, seed: int = 0) -> Path:
    for name, images in class_images(n_per_class, side, seed).items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{i:03d}.png")
    return root


def make_cifar10(root: Path, n_per_class: int = 4) -> Path:
    """torchvision's cifar-10-batches-py layout with a few 32 px images per class."""
    fmt = CIFAR["cifar10"]
    folder = root / fmt.folder
    folder.mkdir(parents=True)
    images = class_images(n_per_class, 32, seed=1)
    names = [*COLOURS, *(f"class{i}" for i in range(len(COLOURS), 10))]
    rows = [(img, label) for label, c in enumerate(COLOURS) for img in images[c]]
    data = np.stack([img.transpose(2, 0, 1).reshape(-1) for img, _ in rows])
    labels = [label for _, label in rows]
    for file in (*fmt.train_files, *fmt.test_files):
        with open(folder / file, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": file}, f)
    with open(folder / fmt.meta_file, "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": len(rows)}, f)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """3 colour classes x 20 images of 24 px."""
    return make_image_folder(tmp_path_factory.mktemp("folder") / "train")


@pytest.fixture(scope="session")
def knn_image_folder(tmp_path_factory) -> Path:
    """3 colour classes x 80 images of 16 px: 216 training images after the held-out split,
    more than the 200 neighbours `sslx probe --eval knn` takes."""
    return make_image_folder(tmp_path_factory.mktemp("knn") / "train", n_per_class=80, side=16)


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    return make_cifar10(tmp_path_factory.mktemp("cifar"))


# --- bad input (issue 15): every table of bad inputs runs through this one check ---


class Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture(scope="session")
def evil_cifar(cifar_root):
    """`evil_cifar(t)`: a CIFAR copy under t whose data_batch_1 would, if unpickled, create
    t.parent / "MARKER"."""

    def make(t: Path) -> Path:
        root = Path(shutil.copytree(cifar_root, t / "cifar"))
        batch = next(root.rglob("data_batch_1"))
        batch.write_bytes(pickle.dumps({"data": Evil(t.parent / "MARKER")}))
        return root

    return make


ERROR_LINE = re.compile(r"^sslx( [a-z]+)*: error: ")


def folder_digest(folder: Path) -> str | None:
    """A hash of every name and byte under `folder` (None if it does not exist)."""
    if not folder.exists():
        return None
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode() + (p.read_bytes() if p.is_file() else b""))
    return h.hexdigest()


class Setups(dict):
    """`{name}` in a row's arguments runs `factories[name](tmp_path)` once and gives its path."""

    def __init__(self, tmp_path: Path, factories: dict) -> None:
        super().__init__()
        self.tmp_path, self.factories = tmp_path, factories

    def __missing__(self, name: str) -> str:
        self[name] = str(self.factories[name](self.tmp_path))
        return self[name]


def read_only(monkeypatch, root: Path) -> None:
    """Make creating anything under `root` fail as on a read-only mount (root can write
    to chmod-ed folders, so patch instead)."""
    real_mkdir, real_open = Path.mkdir, os.open

    def inside(path) -> bool:
        p = Path(path).absolute()
        return p == root or root in p.parents

    def mkdir(self, *args, **kwargs):
        if inside(self):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.fixture
def bad_input(tmp_path, capsys, monkeypatch):
    """`bad_input(argv, message, factories)`: argv (with `{setup}` names) exits 2 with one
    `sslx: error:` line holding `message`, no traceback, and nothing under tmp_path changes
    (the output folder stays as it was, or absent). `{ro}` is a read-only folder."""
    from sslx.cli import main

    def check(argv: list[str], message: str, factories: dict) -> str:
        names = Setups(tmp_path, {**factories, "ro": lambda t: t / "ro", "tmp": lambda t: t})
        argv = [a.format_map(names) for a in argv]
        if "ro" in names:
            read_only(monkeypatch, Path(names["ro"]))
        capsys.readouterr()
        before = folder_digest(tmp_path)
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        assert "Traceback" not in err and "weights_only" not in err, err
        assert err.count("\n") == 1 and ERROR_LINE.match(err), err
        assert message.format_map(names) in err, err
        monkeypatch.undo()  # before hashing: the read-only patch also blocks reading
        assert folder_digest(tmp_path) == before, "bad input changed files"
        return err

    return check


@pytest.fixture(scope="session")
def jpeg_claiming():
    """`jpeg_claiming(side)`: a small JPEG whose frame header claims side x side pixels
    (a decoder-limit case)."""

    def make(side: int) -> bytes:
        _, encoded = cv2.imencode(".jpg", np.zeros((16, 24, 3), np.uint8))
        data, i = bytearray(encoded.tobytes()), 2
        while not (0xC0 <= data[i + 1] <= 0xCF and data[i + 1] not in (0xC4, 0xC8, 0xCC)):
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        data[i + 5 : i + 9] = side.to_bytes(2, "big") * 2
        return bytes(data)

    return make
