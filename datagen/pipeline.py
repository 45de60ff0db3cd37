"""`sslx generate`: plan the shards, render them in worker processes, write them in order.

Each worker renders and writes whole shards. A shard's bytes are a pure function of
its index (every sample is a pure function of (seed, index)), so the output is the
same for any worker count, and a shard only ever appears complete (see shards.py).
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from sslx.atomic import write_bytes_atomic
from sslx.datagen import shards as sh
from sslx.datagen.config import GenerateConfig
from sslx.datagen.estimate import MeasuredRate, check_disk, forecast, forecast_line
from sslx.datagen.render import render_patch
from sslx.datagen.samples_table import scan_shard, write_table
from sslx.datagen.sampling import sample_params
from sslx.datagen.sources import MIN_SOURCE_SIDE, Source, expand_sources, load_sources
from sslx.errors import InputError

PROGRESS_EVERY = 50  # samples between progress-counter updates from a worker
PREVIEW_PNG_TILE = 128  # px of a patch in a .png --preview (a .jpg keeps full size)


@dataclass(frozen=True)
class GenerateReport:
    out: Path
    num_shards: int
    shards_written: tuple[int, ...]
    samples_written: int
    seconds: float
    complete: bool  # every shard exists and manifest.json is written


def generate(
    config: GenerateConfig,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    workers: int = 1,
    part: tuple[int, int] = (0, 1),
    preview: str | Path | None = None,
    progress: bool = True,
) -> GenerateReport:
    """Generate (or finish generating) the shard dataset `config` describes in `out`."""
    out = Path(out)
    if workers < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")
    if preview is not None:
        _check_preview_path(Path(preview))
    paths = expand_sources(images)
    sources = load_sources(paths, min_side=_min_source_side(config))
    identity = sh.dataset_identity(config.to_dict(), [s.info.to_dict() for s in sources])
    lock = sh.claim_folder(out, identity, f"part-{part[0] + 1}-of-{part[1]}")  # side by side
    try:
        return _generate(config, paths, sources, identity, out, workers, part, preview, progress)
    finally:
        lock.release()


def _generate(config, paths, sources, identity, out, workers, part, preview, progress):
    mine = sh.part_shards(config.num_shards, *part)
    sh.remove_stale_temporaries(out, mine)  # an interrupted run's, of this part's shards
    todo = [j for j in mine if not _written(out / sh.shard_name(j))]
    if 0 < len(todo) < len(mine):  # said even with --quiet: it is what this run will do
        total = _patches(config, mine)
        print(
            f"sslx: resuming: {total - _patches(config, todo):,} of {total:,} patches on disk "
            f"({len(mine) - len(todo)} of {len(mine)} shards)",
            file=sys.stderr,
        )
    seconds = _forecast(config, sources, out, todo, workers, progress)

    if preview is not None:
        write_preview(Path(preview), sources, config)

    start = time.perf_counter()
    written = _write_shards(config, paths, sources, out, todo, workers, progress, seconds)
    seconds = time.perf_counter() - start

    complete = all((out / sh.shard_name(j)).exists() for j in range(config.num_shards))
    if complete and (written or not sh.has_current_manifest(out)):
        _finish(config, identity, out, written)
    return GenerateReport(
        out=out,
        num_shards=config.num_shards,
        shards_written=tuple(written),
        samples_written=sum(r.num_samples for r in written.values()),
        seconds=seconds,
        complete=complete,
    )


def _forecast(config, sources, out, todo, workers, progress) -> float:
    """Say how big and how long the work is, and refuse it if the disk cannot hold it;
    returns the seconds forecast."""
    patches = _patches(config, todo)
    sizes = [s.size for s in sources]
    f = forecast(lambda i: render_sample(i, sources, config, sizes), patches, len(todo), workers)
    if progress and patches:
        print(forecast_line(f, config.size, workers), file=sys.stderr)
    check_disk(out, f.bytes)
    return f.seconds


def _patches(config: GenerateConfig, shards: Sequence[int]) -> int:
    return sum(len(sh.shard_range(j, config.shard_size, config.n)) for j in shards)


def _min_source_side(config: GenerateConfig) -> int:
    # Without scale crops the patch is a native-resolution window, so it must fit.
    return MIN_SOURCE_SIDE if config.augment.scale else max(MIN_SOURCE_SIDE, config.size)


def _write_shards(
    config: GenerateConfig,
    paths: list[Path],
    sources: list[Source],
    out: Path,
    todo: list[int],
    workers: int,
    progress: bool,
    forecast_seconds: float = 0.0,
) -> dict[int, sh.ShardRecord]:
    total = _patches(config, todo)
    rate = MeasuredRate(total, forecast_seconds)
    bar = tqdm(
        total=total,
        unit="patch",
        unit_scale=True,
        disable=not progress or total == 0,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
        file=sys.stderr,
    )
    threads = cv2.getNumThreads()
    try:
        if workers == 1 or len(todo) <= 1:

            def report(count: int) -> None:
                bar.update(count)
                _say(rate.update(bar.n), progress)

            _init_worker(paths, config, out, report, sources)
            return {j: _make_shard(j) for j in todo}
        workers = min(workers, len(todo))
        return _write_shards_in_pool(config, paths, out, todo, workers, bar, rate, progress)
    finally:
        bar.close()
        cv2.setNumThreads(threads)
        _WORKER.clear()


def _say(line: str | None, progress: bool) -> None:
    if line and progress:
        tqdm.write(line, file=sys.stderr)


def _write_shards_in_pool(
    config: GenerateConfig,
    paths: list[Path],
    out: Path,
    todo: list[int],
    workers: int,
    bar: tqdm,
    rate: MeasuredRate,
    progress: bool,
) -> dict[int, sh.ShardRecord]:
    ctx = mp.get_context("spawn")
    done = ctx.Value("q", 0)  # samples rendered so far, across workers: drives the bar
    initargs = (paths, config, out, functools.partial(_add_to_shared, done))
    with ctx.Pool(workers, initializer=_init_pool_worker, initargs=initargs) as pool:
        pending = {j: pool.apply_async(_make_shard, (j,)) for j in todo}
        written: dict[int, sh.ShardRecord] = {}
        while pending:
            for j in [j for j, r in pending.items() if r.ready()]:
                written[j] = pending.pop(j).get()  # re-raises a worker's exception
            bar.update(done.value - bar.n)
            _say(rate.update(bar.n), progress)
            if pending:
                time.sleep(0.2)
        bar.update(done.value - bar.n)
    return written


def _add_to_shared(counter, count: int) -> None:
    with counter.get_lock():
        counter.value += count


# Per-process state of a render worker: decoded sources, config, output, and
# `report(count)`, called as samples are rendered, for the progress bar.
_WORKER: dict = {}


def _init_worker(
    paths: list[Path],
    config: GenerateConfig,
    out: Path,
    report: Callable[[int], object],
    sources: list[Source] | None = None,
) -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe
    if sources is None:
        sources = load_sources(paths, min_side=_min_source_side(config))
    sizes = [s.size for s in sources]
    _WORKER.update(sources=sources, config=config, sizes=sizes, out=out, report=report)


def _init_pool_worker(*args) -> None:
    # Ctrl-C reaches the whole process group: the main process alone handles it and ends
    # the pool, so the workers print no traceback of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(*args)


def _make_shard(shard: int) -> sh.ShardRecord:
    """Render and write one whole shard in this process."""
    config: GenerateConfig = _WORKER["config"]
    indices = sh.shard_range(shard, config.shard_size, config.n)

    def samples() -> Iterator[tuple[str, bytes, bytes]]:
        reported = 0
        for k, i in enumerate(indices, 1):
            yield _render_sample(i)
            if k - reported == PROGRESS_EVERY or k == len(indices):
                _WORKER["report"](k - reported)
                reported = k

    return sh.write_shard(_WORKER["out"], shard, indices.start, samples())


def _render_sample(i: int) -> tuple[str, bytes, bytes]:
    return render_sample(i, _WORKER["sources"], _WORKER["config"], _WORKER["sizes"])


def render_sample(
    i: int, sources: list[Source], config: GenerateConfig, sizes: list
) -> tuple[str, bytes, bytes]:
    """Sample i of the dataset: its key, JPEG bytes and JSON metadata."""
    params = sample_params(config.seed, i, sizes, config)
    patch = render_patch(sources[params.source], params, config.size)
    ok, jpg = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for sample {i}")
    meta = params.to_dict()
    meta["source_name"] = sources[params.source].info.name
    meta["size"] = config.size
    return sh.sample_key(i), jpg.tobytes(), json.dumps(meta, sort_keys=True).encode()


def _finish(
    config: GenerateConfig, identity: dict, out: Path, written: dict[int, sh.ShardRecord]
) -> None:
    records, rows = [], []
    for j in range(config.num_shards):
        if j in written:
            records.append(written[j])
        else:  # written by another part or an earlier run: read its rows back once
            shard = sh.shard_range(j, config.shard_size, config.n)
            records.append(sh.record_existing(out, j, shard.start, len(shard)))
            records[-1] = replace(records[-1], rows=scan_shard(out / sh.shard_name(j), j))
        rows.append(records[-1].rows)
    table = write_table(out, rows)
    sh.write_manifest(out, sh.build_manifest(identity, records, table))
    sh.remove_stale_temporaries(out)


def _written(shard: Path) -> bool:
    """A shard on disk counts as written unless it is empty: shards are renamed into place
    whole, so an empty one was left by something else (a crash of the file system, a
    copy); it is written again rather than failing every rerun."""
    if not shard.exists():
        return False
    if shard.stat().st_size == 0:
        print(f"sslx: {shard} is empty; writing it again", file=sys.stderr)
        return False
    return True


def _check_preview_path(path: Path) -> None:
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise InputError(f"--preview must end in .png or .jpg (got {path.name})")
    if not path.parent.is_dir():
        raise InputError(f"--preview folder does not exist: {path.parent}")


def write_preview(
    path: Path, sources: list[Source], config: GenerateConfig, count: int = 64
) -> None:
    """A contact sheet of the first `count` patches, 8 per row, before JPEG encoding.

    A .jpg sheet keeps full-size tiles (quality 90); a .png one, lossless, shrinks tiles to
    PREVIEW_PNG_TILE px so that 64 patches of 256 px are about 2 MB instead of 7."""
    sizes = [s.size for s in sources]
    png = path.suffix.lower() == ".png"
    tile = min(config.size, PREVIEW_PNG_TILE) if png else config.size
    patches = [
        render_patch(sources[p.source], p, config.size)
        for p in (sample_params(config.seed, i, sizes, config) for i in range(min(count, config.n)))
    ]
    cols, gap = 8, 2
    rows = -(-len(patches) // cols)
    cell = tile + gap
    sheet = np.full((rows * cell + gap, cols * cell + gap, 3), 255, np.uint8)
    for k, patch in enumerate(patches):
        if tile != config.size:
            patch = cv2.resize(patch, (tile, tile), interpolation=cv2.INTER_AREA)
        top, left = (gap + cell * rc for rc in divmod(k, cols))
        sheet[top : top + tile, left : left + tile] = patch
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if png else [cv2.IMWRITE_JPEG_QUALITY, 90]
    ok, encoded = cv2.imencode(path.suffix.lower(), sheet, params)
    if not ok:
        raise InputError(f"cannot write --preview {path}")
    try:
        write_bytes_atomic(path, encoded.tobytes())
    except OSError as e:
        raise InputError(f"cannot write --preview {path}: {e.strerror}") from None
