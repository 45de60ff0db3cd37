"""The one way sslx replaces a file: write a temporary, sync it, rename it into place.

A reader (or a resumed run) sees the old file or the new one, never half of one, even
after a crash or a pre-emption. Torch- and numpy-free at import, so datagen workers and
the CLI can import it cheaply.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# Temporaries are `.{final name}.{host}.{pid}.tmp`: unique per writer, even on a shared
# file system, and hidden; `sslx.datagen.shards.remove_stale_temporaries` relies on it.
TMP_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """The hidden temporary that `atomic_write` fills before renaming it onto `path`."""
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}{TMP_SUFFIX}")


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary next to `path` for writing ("wb" or "w", UTF-8); on success flush
    it, fsync it, rename it onto `path` and fsync the folder. On any exception the
    temporary is removed and `path` is left as it was."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w' (got {mode!r})")
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder that cannot be opened for reading: the rename stands anyway
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def write_json_atomic(path: str | Path, data: Any, **dumps: Any) -> None:
    """`json.dumps(data, **dumps)` plus a final newline, strict JSON: a NaN or infinity,
    which other readers refuse, is written as null (sslx never writes a number it lost)."""
    write_text_atomic(path, json.dumps(strict_json(data), allow_nan=False, **dumps) + "\n")


def strict_json(data: Any) -> Any:
    """`data` with every non-finite float replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(v) for v in data]
    return data


def save_torch_atomic(payload: Any, path: str | Path) -> None:
    """`torch.save(payload)` to `path`, like every other output (torch imported on use).
    A full disk, which torch's zip writer reports as "enforce fail", is an OSError naming
    the file and the space it needed; the previous file stays as it was."""
    import torch

    try:
        with atomic_write(path, "wb") as f:
            torch.save(payload, f)
    except RuntimeError as e:
        free = shutil.disk_usage(Path(path).parent).free
        need = _tensor_bytes(payload)
        if need < free:
            raise
        raise OSError(
            errno.ENOSPC,
            f"No space left on device (it needs about {need / 1e9:.2f} GB, "
            f"{free / 1e9:.2f} GB are free; free some and rerun to resume)",
            str(path),
        ) from e


def _tensor_bytes(payload: Any) -> int:
    """The bytes of the tensors in a nested payload (about what torch.save writes)."""
    if hasattr(payload, "element_size") and hasattr(payload, "nelement"):
        return payload.element_size() * payload.nelement()
    if isinstance(payload, dict):
        return sum(_tensor_bytes(v) for v in payload.values())
    if isinstance(payload, (list, tuple)):
        return sum(_tensor_bytes(v) for v in payload)
    return 0


def write_png_atomic(path: str | Path, figure: Any) -> None:
    """A matplotlib figure as PNG, written like every other output (the caller closes it)."""
    with atomic_write(path) as f:
        figure.savefig(f, format="png")
