"""Shard layout, atomic shard writing and the manifest: the contract with `sslx train`.

A dataset folder holds `shard-NNNNNN.tar` files, `generate-config.json` (written
first, identifies the dataset), `samples.parquet` (one row per sample, see
samples_table.py) and `manifest.json` (written last, only once every shard exists).
The format is documented in docs/shards.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from sslx.atomic import TMP_SUFFIX, atomic_write, write_json_atomic
from sslx.common.locks import FolderLock
from sslx.datagen.samples_table import (
    ShardRows,
    data_offset,
    read_locations,
    scan_shard,
    write_table,
)
from sslx.errors import InputError

FORMAT = "sslx-patches"
FORMAT_VERSION = 2  # 2 adds samples.parquet; the shards are the same as in version 1
READ_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "generate-config.json"
KEY_DIGITS = 9


def shard_name(shard: int) -> str:
    return f"shard-{shard:06d}.tar"


def sample_key(index: int) -> str:
    """The WebDataset key of sample `index`; it is also the global sample index."""
    return f"{index:0{KEY_DIGITS}d}"


def shard_range(shard: int, shard_size: int, n: int) -> range:
    """Global sample indices stored in `shard`."""
    return range(shard * shard_size, min((shard + 1) * shard_size, n))


def part_shards(num_shards: int, part: int, parts: int) -> list[int]:
    """The shards that `--part part/parts` generates: every parts-th one, from `part`."""
    return list(range(part, num_shards, parts))


def parse_part(text: str) -> tuple[int, int]:
    """'i/k' -> (i, k), with 0 <= i < k."""
    try:
        i, k = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--part must look like i/k, e.g. 0/4 (got {text!r})") from None
    if not (k >= 1 and 0 <= i < k):
        raise InputError(f"--part i/k needs k >= 1 and 0 <= i < k (got {text!r})")
    return i, k


def sslx_version() -> str:
    try:
        return metadata.version("sslx")
    except metadata.PackageNotFoundError:
        return "unknown"


class _HashingFile:
    """A write-only file wrapper that hashes everything written through it."""

    def __init__(self, f):
        self.f = f
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


@dataclass(frozen=True)
class ShardRecord:
    """One shard's entry in the manifest."""

    name: str
    first_index: int
    num_samples: int
    sha256: str
    bytes: int
    rows: ShardRows | None = field(default=None, compare=False, repr=False)  # as written

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "rows"}


def write_shard(
    out: Path, shard: int, first_index: int, samples: Iterable[tuple[str, bytes, bytes]]
) -> ShardRecord:
    """Write (key, jpg, json) samples to `shard`, atomically (`sslx.atomic`): a shard
    with its final name is always complete."""
    final = out / shard_name(shard)
    count, rows = 0, ShardRows(shard)
    try:
        with atomic_write(final, "wb") as raw:
            hashing = _HashingFile(raw)
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                for key, jpg, meta in samples:
                    rows.add_jpg(key, _add_member(tar, f"{key}.jpg", jpg), len(jpg))
                    rows.add_json(_add_member(tar, f"{key}.json", meta), meta)
                    count += 1
    except OSError as e:
        if e.filename is None:  # a failed write names no file: name the shard
            raise OSError(e.errno, e.strerror, str(final)) from e
        raise
    digest = hashing.sha256.hexdigest()
    return ShardRecord(final.name, first_index, count, digest, hashing.bytes, rows)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> int:
    """Append one member; returns the byte offset of its data in the tar."""
    # Fixed owner, mode and mtime make the tar bytes reproducible. Plain tarfile rather
    # than webdataset's TarWriter: importing webdataset imports torch (~2 s and ~300 MB
    # per render worker); readers see a standard WebDataset shard either way.
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o444
    info.uname = info.gname = "sslx"
    tar.addfile(info, io.BytesIO(data))
    return data_offset(tar, len(data))


def record_existing(out: Path, shard: int, first_index: int, num_samples: int) -> ShardRecord:
    """The manifest entry of a shard already on disk (hashes the file)."""
    path = out / shard_name(shard)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return ShardRecord(path.name, first_index, num_samples, digest.hexdigest(), path.stat().st_size)


def write_dataset_json(path: Path, data: dict) -> None:
    """generate-config.json and manifest.json: sorted keys, indented, written atomically."""
    write_json_atomic(path, data, indent=2, sort_keys=True)


def dataset_identity(config: dict, sources: list[dict]) -> dict:
    """What must match for a folder to hold "the same dataset"."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "sources": sources,
    }


def claim_folder(out: Path, identity: dict, writer: str = "sslx") -> FolderLock:
    """Make `out` ours for this dataset, or refuse if it holds something else; returns the
    lock `writer` holds on it (one process per part, `sslx.common.locks`).

    An empty or missing folder is claimed by writing generate-config.json. A folder
    with an equal generate-config.json is a resume. Anything else is refused, so a
    dataset is never mixed with another or overwritten.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / CONFIG_NAME
    if config_path.exists():
        try:
            existing = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError, RecursionError) as e:
            raise InputError(f"{config_path} is unreadable ({e}); use an empty --out") from None
        # Versions 1 and 2 write the same shards: a version 1 folder is the same dataset.
        if {**existing, "format_version": FORMAT_VERSION} != identity:
            diff = ", ".join(_differences(existing, identity)) or "format"
            raise InputError(
                f"{out} already holds a different dataset (differs in: {diff}); "
                "use another --out or the same settings"
            )
        lock = FolderLock(out, writer)
        if existing != identity:
            write_dataset_json(config_path, identity)
        return lock
    visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
    if visible:
        raise InputError(
            f"{out} is not empty and holds no sslx dataset ({visible[0]} ...); use an empty --out"
        )
    lock = FolderLock(out, writer)
    write_dataset_json(config_path, identity)
    return lock


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out: list[str] = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def build_manifest(identity: dict, records: list[ShardRecord], samples_table: dict) -> dict:
    """`samples_table` is the table's entry: name, rows, sha256 (samples_table.write_table)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sslx_version": sslx_version(),
        "num_samples": sum(r.num_samples for r in records),
        "num_shards": len(records),
        "shards": [r.to_dict() for r in records],
        "samples_table": samples_table,
        "config": identity["config"],
        "sources": identity["sources"],
    }


def write_manifest(folder: Path, manifest: dict) -> None:
    """The manifest, written last and atomically (`build_manifest` makes it)."""
    write_dataset_json(folder / MANIFEST_NAME, manifest)


def read_manifest(folder: str | Path) -> dict:
    """Read and sanity-check a shard folder's manifest; bad folders raise InputError."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise InputError(f"shard folder not found: {folder}")
    if not path.exists():
        unfinished = (folder / CONFIG_NAME).exists()
        hint = " (generation not finished: rerun sslx generate)" if unfinished else ""
        raise InputError(f"no {MANIFEST_NAME} in {folder}{hint}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path} is unreadable: {e}") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("format_version") not in READ_VERSIONS
    ):
        versions = " or ".join(map(str, READ_VERSIONS))
        raise InputError(f"{path} is not an sslx shard manifest of version {versions}")
    problem = _manifest_problem(manifest)
    if problem:
        raise InputError(f"{path} is damaged: {problem}")
    return manifest


def has_current_manifest(folder: Path) -> bool:
    """A readable manifest of this format version (a version 1 one lacks the samples table)."""
    try:
        return read_manifest(folder)["format_version"] == FORMAT_VERSION
    except InputError:
        return False


def add_table(folder: str | Path) -> dict:
    """Add `samples.parquet` to a version 1 dataset (scans every shard once); the shards
    are untouched, the manifest becomes version 2. Returns the new manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    rows = [scan_shard(folder / s["name"], j) for j, s in enumerate(manifest["shards"])]
    manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "samples_table": write_table(folder, rows),
    }
    write_manifest(folder, manifest)
    return manifest


def _is_int(value, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _manifest_problem(manifest: dict) -> str | None:
    """What is wrong with the fields readers rely on, or None."""
    if not _is_int(manifest.get("num_samples")):
        return "num_samples is not a non-negative integer"
    config = manifest.get("config")
    if not isinstance(config, dict) or not _is_int(config.get("size"), 1):
        return "config.size is not a positive integer"
    if not isinstance(manifest.get("sources"), list):
        return "sources is not a list"
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        return "shards is not a list"
    for i, entry in enumerate(shards):
        ok = isinstance(entry, dict) and isinstance(entry.get("name"), str)
        ok = ok and "/" not in entry["name"] and isinstance(entry.get("sha256"), str)
        ok = ok and all(_is_int(entry.get(k)) for k in ("first_index", "num_samples", "bytes"))
        if not ok:
            return f"shards[{i}] lacks a name, first_index, num_samples, sha256 or bytes"
    if sum(entry["num_samples"] for entry in shards) != manifest["num_samples"]:
        return "num_samples is not the sum of the shards' num_samples"
    return _layout_problem(shards)


# A sample is a .jpg and a .json member: two 512-byte tar headers and at least one block each.
MIN_SAMPLE_BYTES = 4 * 512


def _layout_problem(shards: list[dict]) -> str | None:
    """Entries that are well typed but cannot be true: names that are not plain file
    names or appear twice, ranges of samples that overlap or leave gaps, and more samples
    than a shard's bytes can hold."""
    names = [entry["name"] for entry in shards]
    for name in names:
        if "\0" in name or "\\" in name or name.startswith(".") or not name:
            return f"shard name {name!r} is not a plain file name"
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        return f"shard {twice} is listed twice"
    start = 0
    for entry in sorted(shards, key=lambda e: e["first_index"]):
        if entry["first_index"] != start:
            return f"{entry['name']} starts at sample {entry['first_index']}, not {start}"
        if entry["num_samples"] * MIN_SAMPLE_BYTES > entry["bytes"]:
            count, size = entry["num_samples"], entry["bytes"]
            return f"{entry['name']} cannot hold {count} samples in {size} bytes"
        start += entry["num_samples"]
    return None


def check_shard_files(folder: str | Path, manifest: dict, verify: bool = False) -> None:
    """Every shard exists with the manifest's size (fast); with `verify` its sha256 too."""
    folder = Path(folder)
    bad = []
    for entry in manifest["shards"]:
        path = folder / entry["name"]
        try:
            ok = path.stat().st_size == entry["bytes"]
        except OSError:
            ok = False
        if ok:
            ok = _first_key(path) == sample_key(entry["first_index"])  # not another's file
        if ok and verify:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
            ok = digest.hexdigest() == entry["sha256"]
        if not ok:
            bad.append(entry["name"])
    if not bad and manifest.get("samples_table"):
        read_locations(folder, manifest)  # checks that its rows lie inside the shards
    if bad:
        what = "missing, truncated or changed" if verify else "missing or of the wrong size"
        what += " (or not the shard the manifest names there)"
        raise InputError(
            f"{len(bad)} of {len(manifest['shards'])} shard(s) in {folder} are {what}, "
            f"the first {bad[0]}; regenerate them (delete them and rerun sslx generate)"
        )


def _first_key(path: Path) -> str | None:
    """The key of a shard's first member, from its first tar header (one read); None if
    that is not a tar header whose member fits in the file."""
    with open(path, "rb") as f:
        head = f.read(tarfile.BLOCKSIZE)
    try:
        member = tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None
    return member.name.partition(".")[0] if member.size <= path.stat().st_size else None


def remove_stale_temporaries(out: Path, shards: Sequence[int] | None = None) -> None:
    """Drop temporary files of interrupted runs: those of `shards` (a part's, while its
    lock is held, so no other process writes them), or all once every shard exists."""
    if shards is None:
        stale = list(out.glob(f".*{TMP_SUFFIX}"))
    else:
        stale = [p for j in shards for p in out.glob(f".{shard_name(j)}.*{TMP_SUFFIX}")]
    for p in stale:
        p.unlink(missing_ok=True)
