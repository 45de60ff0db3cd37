"""sslx.atomic: a replaced file is the old one or the new one, never half of one."""

import json
import subprocess
import sys

import pytest

from sslx.atomic import (
    atomic_write,
    temporary_path,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from sslx.datagen.shards import remove_stale_temporaries


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as f:
        f.write(b"new ")
        assert path.read_bytes() == b"old"  # not visible until the block ends
        f.write(b"content")
    assert path.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_an_exception_keeps_the_old_content_and_removes_the_temporary(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("old: 1\n")
    with pytest.raises(RuntimeError, match="half-way"), atomic_write(path, "w") as f:
        f.write("new: ")
        assert temporary_path(path).exists()
        raise RuntimeError("half-way")
    assert path.read_text() == "old: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_an_exception_before_the_first_write_creates_nothing(tmp_path):
    path = tmp_path / "missing.json"
    with pytest.raises(KeyError), atomic_write(path):
        raise KeyError("x")
    assert list(tmp_path.iterdir()) == []


def test_text_bytes_and_json_helpers(tmp_path):
    write_bytes_atomic(tmp_path / "b", b"\x00\xff")
    write_text_atomic(tmp_path / "t", "β line\n")
    write_json_atomic(tmp_path / "j.json", {"b": 1, "a": [2]}, indent=2, sort_keys=True)
    assert (tmp_path / "b").read_bytes() == b"\x00\xff"
    assert (tmp_path / "t").read_bytes() == "β line\n".encode()
    text = (tmp_path / "j.json").read_text()
    assert text == json.dumps({"a": [2], "b": 1}, indent=2) + "\n"
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "a"):
        pass


def test_the_temporary_is_hidden_unique_and_cleaned_by_the_shard_writer(tmp_path):
    path = tmp_path / "shard-000000.tar"
    tmp = temporary_path(path)
    assert tmp.parent == tmp_path and tmp.name.startswith(".shard-000000.tar.")
    assert tmp.name.endswith(".tmp")
    tmp.write_bytes(b"left by a killed run")
    remove_stale_temporaries(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_importing_it_imports_neither_torch_nor_numpy():
    code = "import sys, sslx.atomic; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_json_that_sslx_writes_is_strict(tmp_path):
    from sslx.atomic import write_json_atomic

    write_json_atomic(tmp_path / "r.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": 2})
    text = (tmp_path / "r.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "a": None,
        "b": [1.0, None],
        "c": 2,
    }
