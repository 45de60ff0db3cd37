"""`samples.parquet`: one row per sample, where it lies in its shard and how it was made.

Manifest format_version 2 adds this table next to manifest.json (docs/shards.md). A
random-access reader loads the location columns instead of scanning every tar; users
query the augmentation parameters (the `PatchParams` fields) without opening a shard.
Rows are collected while each shard is written (`ShardRows`); shards written by another
process (`generate --part`, an earlier interrupted run, a version 1 dataset) are read
back from their tar headers and .json members once, by the process that writes the
manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sslx.atomic import write_bytes_atomic
from sslx.datagen.sampling import PatchParams
from sslx.errors import InputError, first_line

TABLE_NAME = "samples.parquet"
TAR_BLOCK = 512
# PatchParams' types; the released preset's extras are null where a preset has none.
_TYPES = {
    "int": pa.int32(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "float | None": pa.float64(),
    "bool | None": pa.bool_(),
    "str | None": pa.string(),
    "tuple[int, int, int] | None": pa.list_(pa.int32(), 3),
}
PARAM_FIELDS = tuple(f.name for f in fields(PatchParams) if f.name != "index")
SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("shard", pa.int32()),
        ("jpg_offset", pa.int64()),  # byte offset of the .jpg member's data in the tar
        ("jpg_size", pa.int64()),
        ("json_offset", pa.int64()),
        ("json_size", pa.int64()),
    ]
    + [(f.name, _TYPES[str(f.type)]) for f in fields(PatchParams) if f.name != "index"]
)
LOCATION = ("index", "shard", "jpg_offset", "jpg_size")


class ShardRows:
    """The table's rows of one shard, in columns."""

    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.columns: dict[str, list] = {name: [] for name in SCHEMA.names}

    def add_jpg(self, key: str, offset: int, size: int) -> None:
        for name, value in zip(LOCATION, (int(key), self.shard, offset, size), strict=True):
            self.columns[name].append(value)

    def add_json(self, offset: int, data: bytes) -> None:
        """The sample's .json member: its place and the parameters it holds."""
        self.columns["json_offset"].append(offset)
        self.columns["json_size"].append(len(data))
        meta = json.loads(data)
        for name in PARAM_FIELDS:
            self.columns[name].append(meta.get(name))


def data_offset(tar: tarfile.TarFile, size: int) -> int:
    """Offset of the data of the member just added: it ends at `tar.offset`, padded."""
    return tar.offset - -(-size // TAR_BLOCK) * TAR_BLOCK


def scan_shard(path: Path, shard: int) -> ShardRows:
    """Rows of a shard on disk, from its tar headers and .json members."""
    rows = ShardRows(shard)
    try:
        with tarfile.open(path) as tar, open(path, "rb") as raw:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if ext == "jpg":
                    rows.add_jpg(key, member.offset_data, member.size)
                elif ext == "json":
                    raw.seek(member.offset_data)
                    rows.add_json(member.offset_data, raw.read(member.size))
    except (OSError, tarfile.TarError, ValueError) as e:
        raise InputError(
            f"{path} is not a readable shard ({first_line(e)}); delete it and rerun sslx "
            "generate to write it again"
        ) from None
    return rows


def write_table(out: Path, parts: list[ShardRows]) -> dict:
    """Write the table of all shards (in shard order) atomically; its manifest entry."""
    columns = {name: [v for p in parts for v in p.columns[name]] for name in SCHEMA.names}
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    path = out / TABLE_NAME
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue().to_pybytes()
    write_bytes_atomic(path, data)
    digest = hashlib.sha256(data).hexdigest()
    return {"name": TABLE_NAME, "rows": table.num_rows, "sha256": digest}


def read_locations(folder: Path, manifest: dict) -> pa.Table | None:
    """The location columns of a version 2 dataset's table, or None for version 1."""
    entry = manifest.get("samples_table")
    if entry is None:
        if os.environ.get("RANK", "0") == "0":
            print(
                f"sslx: note: {folder} has no {TABLE_NAME} (shard format version 1); indexing "
                'by scanning the tars. Add it once with: python -c "from '
                f"sslx.datagen.shards import add_table; add_table('{folder}')\"",
                file=sys.stderr,
            )
        return None
    path = folder / entry["name"]
    try:
        table = pq.read_table(path, columns=list(LOCATION))
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path} is unreadable: {e}") from None
    if table.num_rows != entry["rows"]:
        raise InputError(f"{path} has {table.num_rows} rows, the manifest lists {entry['rows']}")
    if not _inside(table, manifest):  # a row elsewhere would read another sample's bytes
        raise InputError(
            f'{path} points outside its shards; rebuild it with: python -c "from '
            f"sslx.datagen.shards import add_table; add_table('{folder}')\""
        )
    return table


def _inside(table: pa.Table, manifest: dict) -> bool:
    """Every row's index, shard and JPEG bytes lie inside the dataset the manifest lists."""
    if table.num_rows == 0:
        return True
    index, shard = table["index"].to_numpy(), table["shard"].to_numpy()
    offset, size = table["jpg_offset"].to_numpy(), table["jpg_size"].to_numpy()
    if index.min() < 0 or index.max() >= manifest["num_samples"]:
        return False
    if shard.min() < 0 or shard.max() >= len(manifest["shards"]):
        return False
    ends = np.array([s["bytes"] for s in manifest["shards"]], np.int64)[shard]
    return bool(((offset >= 0) & (size > 0) & (offset + size <= ends)).all())
