"""`generate` end to end: deterministic for any workers, resumable, splittable."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import webdataset as wds

from sslx.datagen import GenerateConfig, generate, read_manifest
from sslx.datagen.shards import CONFIG_NAME, MANIFEST_NAME

CONFIG = GenerateConfig(n=250, size=48, shard_size=60, seed=5)


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def reference(photo, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    report = generate(CONFIG, [photo], out, workers=1, progress=False)
    assert report.complete and report.samples_written == 250
    return out


def test_manifest_describes_the_shards(reference, photo):
    manifest = read_manifest(reference)
    assert manifest["num_samples"] == 250 and manifest["num_shards"] == 5
    assert [s["num_samples"] for s in manifest["shards"]] == [60, 60, 60, 60, 10]
    assert [s["first_index"] for s in manifest["shards"]] == [0, 60, 120, 180, 240]
    assert manifest["config"] == CONFIG.to_dict()
    assert manifest["sources"][0]["name"] == photo.name
    assert manifest["sslx_version"] not in ("", None)


def test_shards_hold_every_sample_with_its_parameters(reference):
    urls = sorted(str(p) for p in reference.glob("shard-*.tar"))
    read = list(wds.WebDataset(urls, shardshuffle=False))
    assert [int(s["__key__"]) for s in read] == list(range(250))
    meta = json.loads(read[17]["json"])
    assert meta["index"] == 17 and meta["source"] == 0 and meta["size"] == 48
    assert {"cx", "cy", "w", "h", "rotation_degrees", "flip", "hue"} <= set(meta)
    patch = cv2.imdecode(np.frombuffer(read[17]["jpg"], np.uint8), cv2.IMREAD_COLOR)
    assert patch.shape == (48, 48, 3)


def test_byte_identical_for_any_worker_count(reference, photo, tmp_path):
    generate(CONFIG, [photo], tmp_path, workers=2, progress=False)
    assert files(tmp_path) == files(reference)


def test_parts_together_equal_one_run(reference, photo, tmp_path):
    first = generate(CONFIG, [photo], tmp_path, part=(0, 2), progress=False)
    assert first.shards_written == (0, 2, 4) and not first.complete
    assert not (tmp_path / MANIFEST_NAME).exists()
    second = generate(CONFIG, [photo], tmp_path, part=(1, 2), progress=False)
    assert second.shards_written == (1, 3) and second.complete
    assert files(tmp_path) == files(reference)


def test_rerun_of_a_complete_dataset_does_nothing(reference, photo):
    before = {p.name: p.stat().st_mtime_ns for p in reference.iterdir()}
    report = generate(CONFIG, [photo], reference, progress=False)
    assert report.shards_written == () and report.complete
    assert {p.name: p.stat().st_mtime_ns for p in reference.iterdir()} == before


def test_resume_after_kill_completes_only_what_is_missing(photo, tmp_path):
    args = [
        "--image",
        str(photo),
        *"--n 3000 --size 64 --shard-size 150 --seed 1 --workers 1 --quiet".split(),
    ]
    full = tmp_path / "full"
    subprocess.run(
        [sys.executable, *"-m sslx.cli generate".split(), *args, "--out", str(full)], check=True
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, *"-m sslx.cli generate".split(), *args, "--out", str(out)],
        start_new_session=True,
    )
    deadline = time.time() + 120
    while len(list(out.glob("shard-*.tar"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = {p.name: p.stat().st_ino for p in out.glob("shard-*.tar")}
    assert 3 <= len(survivors) < 20, "the run must be killed part-way"
    assert not (out / MANIFEST_NAME).exists()
    for name in survivors:  # a shard with its final name is never partial
        assert (out / name).read_bytes() == (full / name).read_bytes()

    subprocess.run(
        [sys.executable, *"-m sslx.cli generate".split(), *args, "--out", str(out)], check=True
    )
    assert files(out) == files(full)
    assert {n: (out / n).stat().st_ino for n in survivors} == survivors  # not rewritten


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_ends_in_one_line_that_says_how_to_continue(photo, tmp_path, sig):
    """Ctrl-C (to the whole process group, as a terminal sends it) or a scheduler's SIGTERM:
    no worker traceback, no leaked semaphores, the way to continue; the rerun says where it
    resumes from."""
    args = [
        "--image",
        str(photo),
        *"--n 20000 --size 64 --shard-size 500 --seed 1 --workers 2".split(),
    ]
    out = tmp_path / "out"
    command = [sys.executable, *"-m sslx.cli generate".split(), *args, "--out", str(out)]
    proc = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(out.glob("shard-*.tar"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "leaked" not in err, err
    assert err.strip().splitlines()[-1] == (
        "sslx: interrupted; finished shards are kept; rerun the same command to continue"
    )
    kept = len(list(out.glob("shard-*.tar")))
    assert 2 <= kept < 40 and not (out / MANIFEST_NAME).exists()
    rerun = subprocess.run([*command, "--quiet"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"sslx: resuming: {kept * 500:,} of 20,000 patches on disk ({kept} of 40 shards)" in (
        rerun.stderr
    )


def test_preview_contact_sheet(photo, tmp_path):
    sheet = tmp_path / "grid.png"
    generate(CONFIG, [photo], tmp_path / "out", preview=sheet, progress=False)
    image = cv2.imread(str(sheet))
    assert image.shape == (8 * 50 + 2, 8 * 50 + 2, 3)


def test_several_sources_share_the_patches(photo, shared_images, tmp_path):
    config = GenerateConfig(n=30, size=32, shard_size=30)
    generate(config, [photo, shared_images / "coffee.png"], tmp_path, progress=False)
    read = list(wds.WebDataset(str(tmp_path / "shard-000000.tar"), shardshuffle=False))
    names = [json.loads(s["json"])["source_name"] for s in read]
    assert names.count("photo.png") == names.count("coffee.png") == 15


def test_claim_is_written_before_any_shard(photo, tmp_path):
    generate(GenerateConfig(n=5, size=32), [photo], tmp_path, progress=False)
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["config"]["n"] == 5


@pytest.mark.slow
def test_paper_settings_byte_identical_for_any_worker_count(shared_images, tmp_path):
    """The paper's photo at the paper's 256 px, several sources, 1 vs 2 workers."""
    config = GenerateConfig(n=3000, shard_size=500, seed=11)
    images = [shared_images / "ameyoko.jpg", shared_images / "sf.png"]
    generate(config, images, tmp_path / "one", workers=1, progress=False)
    generate(config, images, tmp_path / "two", workers=2, progress=False)
    assert files(tmp_path / "one") == files(tmp_path / "two")
    manifest = read_manifest(tmp_path / "one")
    assert [s["name"] for s in manifest["sources"]] == ["ameyoko.jpg", "sf.png"]


def test_png_preview_shrinks_tiles_and_jpg_keeps_them(photo, tmp_path):
    config = GenerateConfig(n=8, size=160, shard_size=8)
    generate(config, [photo], tmp_path / "a", preview=tmp_path / "grid.png", progress=False)
    generate(config, [photo], tmp_path / "b", preview=tmp_path / "grid.jpg", progress=False)
    assert cv2.imread(str(tmp_path / "grid.png")).shape == (130 + 2, 8 * 130 + 2, 3)
    assert cv2.imread(str(tmp_path / "grid.jpg")).shape == (162 + 2, 8 * 162 + 2, 3)


def test_forecast_is_printed_and_near_the_real_size(photo, tmp_path, capsys):
    generate(CONFIG, [photo], tmp_path / "out", progress=True)
    line = next(x for x in capsys.readouterr().err.splitlines() if "patches of 48 px" in x)
    forecast_mb = float(line.split("about ")[1].split(" MB")[0])
    real_mb = sum(p.stat().st_size for p in (tmp_path / "out").glob("*.tar")) / 1e6
    assert 0.7 * real_mb <= forecast_mb <= 1.3 * real_mb, (line, real_mb)


def test_no_room_on_disk_is_refused_before_any_shard(photo, tmp_path, monkeypatch):
    import shutil

    from sslx.datagen import estimate
    from sslx.errors import InputError

    full = shutil.disk_usage(tmp_path)._replace(free=10 * 2**20)
    monkeypatch.setattr(estimate.shutil, "disk_usage", lambda path: full)
    with pytest.raises(InputError, match="not enough disk space"):
        generate(CONFIG, [photo], tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("*.tar"))


def test_samples_table_locates_every_member_and_holds_its_parameters(reference):
    import pyarrow.parquet as pq

    from sslx.datagen.samples_table import PARAM_FIELDS

    manifest = read_manifest(reference)
    entry = manifest["samples_table"]
    assert manifest["format_version"] == 2 and entry["rows"] == 250
    table = pq.read_table(reference / entry["name"]).to_pylist()
    assert [r["index"] for r in table] == list(range(250))
    for row in (table[0], table[131], table[249]):
        path = reference / manifest["shards"][row["shard"]]["name"]
        data = path.read_bytes()
        jpg = data[row["jpg_offset"] : row["jpg_offset"] + row["jpg_size"]]
        meta = json.loads(data[row["json_offset"] : row["json_offset"] + row["json_size"]])
        assert jpg[:2] == b"\xff\xd8" and meta["index"] == row["index"]
        assert {k: row[k] for k in PARAM_FIELDS} == {k: meta.get(k) for k in PARAM_FIELDS}


def _as_version_1(reference, copy):
    import shutil

    from sslx.datagen.samples_table import TABLE_NAME

    shutil.copytree(reference, copy)
    for name in (MANIFEST_NAME, CONFIG_NAME):
        data = json.loads((copy / name).read_text())
        data.pop("samples_table", None)
        (copy / name).write_text(json.dumps({**data, "format_version": 1}))
    (copy / TABLE_NAME).unlink()
    return copy


def test_a_version_1_dataset_loads_and_gains_the_table(reference, photo, tmp_path):
    from sslx.datagen.shards import add_table

    copy = _as_version_1(reference, tmp_path / "a")
    assert read_manifest(copy)["num_samples"] == 250  # version 1 is still read
    add_table(copy)  # scans the tars: the same table as the one written with the shards
    assert read_manifest(copy) == read_manifest(reference)
    # Rerunning the same generate command upgrades it too (shards untouched).
    again = _as_version_1(reference, tmp_path / "b")
    report = generate(CONFIG, [photo], again, progress=False)
    assert report.shards_written == () and files(again) == files(reference)


def test_leftovers_of_interrupted_runs_are_dropped_or_rewritten(reference, photo, tmp_path):
    """An empty shard is written again (not a failure on every rerun); a part drops its own
    shards' temporaries at once, and leaves another part's alone until the dataset is whole."""
    first = generate(CONFIG, [photo], tmp_path, part=(0, 2), progress=False)
    assert first.shards_written == (0, 2, 4)
    (tmp_path / "shard-000002.tar").write_bytes(b"")
    mine = tmp_path / ".shard-000000.tar.host.1.tmp"
    theirs = tmp_path / ".shard-000001.tar.host.2.tmp"
    for leftover in (mine, theirs):
        leftover.write_bytes(b"x" * 1000)
    again = generate(CONFIG, [photo], tmp_path, part=(0, 2), progress=False)
    assert again.shards_written == (2,) and not mine.exists() and theirs.exists()
    generate(CONFIG, [photo], tmp_path, part=(1, 2), progress=False)
    assert files(tmp_path) == files(reference)  # whole: every temporary gone, same bytes
