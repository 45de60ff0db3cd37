"""Does sslx work on this GPU, and how fast? One command, at most 380 s by default, so that
with `pytest -m gpu` and the machine's start it fits a 9-minute check (benchmarks/gpu_check.sh).

    python benchmarks/gpu.py                        # one GPU; writes gpu-report.md
    python benchmarks/gpu.py --out report.md --imagenette ../shared/data/imagenette-train.tar.gz
    python benchmarks/gpu.py --device cpu --quick   # tiny sizes: a smoke test of this script

Each measurement runs in a fresh process under its own time cap, through sslx's CLI
(`sslx generate`, `sslx train --max-steps`, `sslx probe`) or its Python API (the
clustering step), in this order:

1. `sslx generate`: 50,000 patches of 256 px with all cores (patches/s);
2. `sslx train` of every method at 224 px (BiGAN at its own 64 px), bf16 autocast and
   channels_last (the loop's CUDA defaults), 200 steps: img/s (metrics.jsonl, after the
   warm-up), GPU utilisation, the share of the steady state spent waiting for the next
   batch, peak GPU memory; DeepCluster with its clustering step on the patches, k = 10,000;
3. DeepCluster's clustering step at full size: 1,281,167 x 4096 synthetic clustered
   features generated on the GPU in batches of 256 -> PCA 256 -> k = 10,000, 20
   iterations, with the torch k-means and with FAISS's GPU path if it works here;
4. `sslx probe` streaming Imagenette (or, where its archive is missing, a synthetic
   stand-in of 10 classes) at 224 px for one epoch: img/s, and the projected time of the
   paper's 36-epoch protocol on 1.28M images;
   RotNet and SimCLR again with `--decode gpu` (nvJPEG and crops on the GPU);
5. RotNet again with `--compile` (last, since compiling is the slowest part).

Whatever cannot run is skipped with a line saying why: a missing webdataset (the shard
reader needs it) skips training, a missing or broken FAISS leaves the torch k-means, and
a step that would start after `--budget` seconds is skipped rather than run over. A step
that fails keeps the last 30 lines of its output in the report's "Failures".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from gpu_report import TRAIN_HEADER, environment, train_row  # benchmarks/gpu_report.py

from sslx.common.device import default_workers, usable_cores
from sslx.train.methods import SPECS

REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("gpu_child.py")
SHARED_DATA = Path(os.environ.get("SSLX_SHARED_DATA", REPO.parent / "shared" / "data"))
IMAGENET_TRAIN, IMAGENET_VAL, PROBE_EPOCHS = 1_281_167, 50_000, 36  # the paper's protocol
METHODS = tuple(SPECS)  # every registered method
DEVICE_DECODE = [("rotnet", "gpu"), ("simclr", "gpu")]


@dataclass(frozen=True)
class Sizes:
    patches: int
    patch_size: int
    size: int
    gan_size: int
    width: int | None  # --classifier-width (None: the paper's 4096)
    batch: int | None  # --batch-size (None: each method's own)
    steps: int
    log_every: int
    clusters: int
    pca_dim: int
    cluster_n: int
    cluster_width: int
    cluster_k: int
    cluster_iterations: int
    cluster_batch: int
    probe_per_class: int | None  # images per class for the probe (None: all)
    probe_batch: int | None


FULL = Sizes(
    patches=50_000,
    patch_size=256,
    size=224,
    gan_size=64,
    width=None,
    batch=256,  # one global batch for every method, as the loader arithmetic assumes
    steps=200,
    log_every=20,
    clusters=10_000,
    pca_dim=256,
    cluster_n=IMAGENET_TRAIN,
    cluster_width=4096,
    cluster_k=10_000,
    cluster_iterations=20,
    cluster_batch=256,
    probe_per_class=None,
    probe_batch=None,
)
QUICK = Sizes(400, 64, 64, 64, 256, 16, 6, 2, 20, 16, 4000, 256, 40, 5, 64, 6, 16)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("gpu-report.md"), help="markdown report")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    p.add_argument(
        "--imagenette",
        type=Path,
        default=SHARED_DATA / "imagenette-train.tar.gz",
        help="Imagenette archive (supervised run and probe)",
    )
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument(
        "--budget",
        type=float,
        help="seconds; a step that would start later is skipped "
        "(default: 380, or 1500 with --quick)",
    )
    return p.parse_args()


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.sizes = QUICK if args.quick else FULL
        self.device = torch.device(args.device)
        self.workers = default_workers(self.device, 1)
        args.budget = args.budget or (1500.0 if args.quick else 380.0)
        self.deadline = time.monotonic() + args.budget
        self.sections: list[str] = []
        self.skipped: list[str] = []
        self.failures: list[str] = []  # each failed step's last 30 lines

    def cap(self, seconds: float) -> float:
        """A step's time cap: sized for a GPU; --quick on a CPU gets five times as long."""
        return seconds * (5 if self.args.quick and self.device.type == "cpu" else 1)

    def skip(self, line: str) -> None:
        print(f"skipped: {line}", flush=True)
        self.skipped.append(line)

    def time_left(self, what: str, need: float = 20.0) -> float | None:
        left = self.deadline - time.monotonic()
        if left < need:
            self.skip(f"{what}: the {self.args.budget:.0f} s budget is spent")
            return None
        return left

    def run(self, cmd: list[str], what: str, cap: float) -> subprocess.CompletedProcess | None:
        left = self.time_left(what)
        if left is None:
            return None
        print(f"running: {what}", flush=True)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=min(cap, left))
        except subprocess.TimeoutExpired as e:
            self.skip(f"{what}: stopped after {min(cap, left):.0f} s")
            self.keep_tail(what, e.stdout, e.stderr)
            return None
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            self.skip(f"{what}: exit code {done.returncode}: {tail}")
            self.keep_tail(what, done.stdout, done.stderr)
            return None
        return done

    def keep_tail(self, what: str, *outputs: str | bytes | None) -> None:
        text = "\n".join(
            o.decode(errors="replace") if isinstance(o, bytes) else o or "" for o in outputs
        )
        tail = "\n".join(text.strip().splitlines()[-30:]) or "(no output)"
        print(f"last lines of {what}:\n{tail}", flush=True)
        self.failures.append(f"### {what}\n\n```\n{tail}\n```")

    def child(self, mode: str, spec: dict, what: str, cap: float) -> dict | None:
        tag = what.replace(" ", "-").replace(",", "")
        spec_path, result_path = self.work / f"{tag}.spec.json", self.work / f"{tag}.result.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [sys.executable, str(CHILD), mode, str(spec_path), str(result_path)]
        if self.run(cmd, what, cap) is None:
            return None
        return json.loads(result_path.read_text())

    def write(self) -> None:
        header = environment(self.device, self.workers, self.args.quick)
        skipped = "\n".join(f"- {line}" for line in self.skipped) or "- nothing"
        failures = ["## Failures", *self.failures] if self.failures else []
        text = "\n\n".join([header, *self.sections, f"## Skipped\n\n{skipped}", *failures])
        self.args.out.write_text(text + "\n")


def generate(b: Bench) -> Path | None:
    s, out = b.sizes, b.work / "shards"
    flags = f"--n {s.patches} --size {s.patch_size} --quiet".split()
    cmd = [sys.executable, *"-m sslx.cli generate".split(), *flags, "--out", str(out)]
    if s.patches < 5000:
        cmd += ["--shard-size", str(max(1, s.patches // 4))]
    t0 = time.perf_counter()
    if b.run(cmd, "sslx generate", b.cap(90)) is None:
        return None
    seconds = time.perf_counter() - t0
    b.sections.append(
        "## sslx generate\n\n| patches | px | workers | s (start-up included) | patches/s |\n"
        f"|---|---|---|---|---|\n| {s.patches:,} | {s.patch_size} | all {usable_cores()} "
        f"| {seconds:.1f} | {s.patches / seconds:,.0f} |"
    )
    return out


def imagenette(b: Bench) -> Path | None:
    if not b.args.imagenette.exists():
        b.skip(f"{b.args.imagenette} does not exist (--imagenette): a synthetic stand-in")
        return stand_in(b.work / "data" / "stand-in", images=8 if b.args.quick else 60)
    with tarfile.open(b.args.imagenette) as tar:
        try:
            tar.extractall(b.work / "data", filter="data")
        except TypeError:  # Python < 3.10.12 has no extraction filters
            tar.extractall(b.work / "data")
    root = b.work / "data" / "imagenette" / "train"
    if b.sizes.probe_per_class is None:
        return root
    subset = b.work / "data" / "subset"  # --quick: a few images per class
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        (subset / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[: b.sizes.probe_per_class]:
            (subset / folder.name / image.name).symlink_to(image)
    return subset


def stand_in(root: Path, images: int) -> Path:
    """Imagenette's layout with random JPEGs of its size (10 classes), for a machine
    without the archive: the supervised run and the probe measure speed, not accuracy."""
    rng = np.random.default_rng(0)
    for c in range(10):
        (root / f"n{c:08d}").mkdir(parents=True)
        for i in range(images):
            image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            cv2.imwrite(str(root / f"n{c:08d}" / f"{i}.JPEG"), image)
    return root


def train_runs(b: Bench, shards: Path, labelled: Path | None, compile_: bool) -> list[str]:
    s, rows = b.sizes, []
    # Compiling takes minutes: one method shows it. Decoding on the GPU (--decode gpu) for
    # a one-view and a two-view method, beside their CPU-loader rows.
    runs = [("rotnet", "")] if compile_ else [*((m, "") for m in METHODS), *DEVICE_DECODE]
    for method, decode in runs:
        size = s.gan_size if method == "bigan" else s.size
        tag = f"{' compiled' if compile_ else ''}{' decode gpu' if decode else ''}"
        run = b.work / "runs" / f"{method}{tag.replace(' ', '-')}"
        flags = (
            f"--method {method} --size {size} --max-steps {s.steps} --log-every {s.log_every} "
            f"--checkpoint-every 1000000 --workers {b.workers} --device {b.device.type} --quiet"
        )
        argv = ["train", *flags.split(), "--out", str(run)]
        if method == "supervised":
            if labelled is None:
                continue
            argv += ["--data-dir", str(labelled)]
        else:
            argv += ["--shards", str(shards)]
        if method == "deepcluster":
            argv += ["--clusters", str(s.clusters), "--pca-dim", str(s.pca_dim)]
        argv += ["--compile"] if compile_ else []
        argv += ["--decode", decode] if decode else []
        argv += ["--classifier-width", str(s.width)] if s.width else []
        argv += ["--batch-size", str(s.batch)] if s.batch else []
        spec = {"argv": argv, "device": str(b.device), "warmup": 2 * s.log_every}
        what = f"train {method}{tag}"
        result = b.child("train", spec, what, cap=b.cap(120 if compile_ else 60))
        if result is not None:
            rows.append(
                train_row(method + tag.replace(" compiled", ""), size, compile_, run, result)
            )
    return rows


def clustering(b: Bench) -> None:
    s, rows = b.sizes, []
    for backend in ("torch", "faiss"):
        if backend == "faiss" and importlib.util.find_spec("faiss") is None:
            b.skip("clustering step with FAISS: faiss is not installed")
            continue
        spec = {
            "device": str(b.device),
            "backend": backend,
            "n": s.cluster_n,
            "width": s.cluster_width,
            "k": s.cluster_k,
            "pca_dim": s.pca_dim if b.args.quick else 256,
            "iterations": s.cluster_iterations,
            "batch": s.cluster_batch,
        }
        r = b.child("cluster", spec, f"clustering step {backend}", cap=b.cap(120))
        if r is None:
            continue
        if "skipped" in r:
            b.skip(f"clustering step with FAISS on the GPU: {r['skipped']}")
            continue
        total = r["seconds_features"] + r["seconds_pca"] + r["seconds_kmeans"]
        peak = f"{r['peak_bytes'] / 2**30:.1f} GiB" if "peak_bytes" in r else "-"
        rows.append(
            f"| {r['backend']} on {r['kmeans_device']} | {r['seconds_features']:.1f} "
            f"| {r['seconds_pca']:.1f} | {r['seconds_kmeans']:.1f} | {total:.1f} | {peak} "
            f"| {r['host_peak_bytes'] / 2**30:.1f} GiB | {r['non_empty']:,} |"
        )
    if rows:
        store = s.cluster_n * s.cluster_width * 2 / 2**20
        b.sections.append(
            f"## DeepCluster's clustering step: N = {s.cluster_n:,}, d = {s.cluster_width}, "
            f"k = {s.cluster_k:,}, {s.cluster_iterations} iterations\n\nSynthetic clustered "
            f"features made on the device in batches of {s.cluster_batch}; float16 host store "
            f"{store:,.0f} MiB. Features s = statistics + host copy (+ making the features).\n\n"
            "| k-means | features s | PCA + projection + gather s | k-means s | total s "
            "| peak GPU memory | peak host memory (process) | non-empty clusters |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
        )


def probe(b: Bench, labelled: Path | None) -> None:
    if labelled is None:
        return
    out = b.work / "probe"
    flags = (
        f"--random-init --size {b.sizes.size} --epochs 1 --workers {b.workers} "
        f"--device {b.device.type} --quiet"
    )
    cmd = [sys.executable, "-m", "sslx.cli", "probe", *flags.split()]
    cmd += ["--data-dir", str(labelled), "--out", str(out)]
    cmd += ["--batch-size", str(b.sizes.probe_batch)] if b.sizes.probe_batch else []
    if b.run(cmd, "sslx probe", b.cap(90)) is None:
        return
    seconds = json.loads((out / "results.json").read_text())["results"][0]["seconds"]
    images = sum(1 for p in labelled.rglob("*") if p.is_file() or p.is_symlink())
    n_val = round(images * 0.1)  # the probe's default --val-fraction
    train_rate, eval_rate = (images - n_val) / seconds["train"], n_val / seconds["evaluate"]
    hours = (PROBE_EPOCHS * IMAGENET_TRAIN / train_rate + IMAGENET_VAL / eval_rate) / 3600
    b.sections.append(
        f"## sslx probe, streaming, {b.sizes.size} px, conv1..conv5, one epoch\n\n"
        "| images (train / held out) | train img/s | eval img/s "
        f"| projected {PROBE_EPOCHS} epochs on {IMAGENET_TRAIN:,} + eval on {IMAGENET_VAL:,} "
        f"|\n|---|---|---|---|\n| {images - n_val:,} / {n_val:,} | {train_rate:,.0f} "
        f"| {eval_rate:,.0f} | {hours:.1f} h |"
    )


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="sslx-gpu-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        b = Bench(args, work)
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        shards = generate(b)
        b.write()
        labelled = imagenette(b)
        trains = importlib.util.find_spec("webdataset") is not None and shards is not None
        if not trains:
            b.skip(
                "training: sslx train needs webdataset (the shard reader imports it)"
                if shards is not None
                else "training: no shards"
            )
        index = len(b.sections)
        rows = train_runs(b, shards, labelled, compile_=False) if trains else []
        b.write()
        clustering(b)
        b.write()
        probe(b, labelled)
        b.write()
        rows += train_runs(b, shards, labelled, compile_=True) if trains else []
        if rows:
            note = (
                "bf16 autocast and channels_last on CUDA; img/s is the median of the "
                "metrics.jsonl records after the first two; data wait is the share of "
                "the steady-state step interval spent waiting for the next batch"
            )
            b.sections.insert(
                index, f"## sslx train\n\n{note}.\n\n{TRAIN_HEADER}\n" + "\n".join(rows)
            )
        b.write()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
