"""Benchmark `sslx generate` against its JPEG bound and a naive torchvision pipeline.

Everything is measured side by side in one run on the same machine, and reported as
rates and ratios. Per-core figures run in this process with one thread; the scaling
figure runs the real `generate` end to end (worker start-up included) with 1 and 2
workers.

    python benchmarks/generate.py                       # the paper's photo, 256 px, q90
    python benchmarks/generate.py --n-scaling 4000      # quicker, noisier
"""

from __future__ import annotations

import argparse
import io
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from sslx.datagen import GenerateConfig, generate
from sslx.datagen import pipeline as gen_module
from sslx.datagen.sources import load_sources

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "images" / "ameyoko.jpg"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="source photo")
    p.add_argument("--size", type=int, default=256, help="patch side in pixels")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality")
    p.add_argument("--n-core", type=int, default=2000, help="patches for per-core rates")
    p.add_argument("--n-naive", type=int, default=300, help="patches for the naive baseline")
    p.add_argument("--n-scaling", type=int, default=16000, help="patches per end-to-end run")
    p.add_argument("--repeats", type=int, default=2, help="repeats; the best is reported")
    return p.parse_args()


def best_rate(fn, n: int, repeats: int) -> float:
    """Patches per second of the fastest of `repeats` runs of fn() (which makes n)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / min(times)


def start_worker(config: GenerateConfig, image: Path) -> None:
    """Set this process up as a render worker, as `generate` does for each worker."""
    sources = load_sources([image])
    gen_module._init_worker([image], config, Path("."), lambda count: None, sources)


def ours_per_core(config: GenerateConfig, n: int, repeats: int) -> float:
    """sample → warp → colour → JPEG encode → JSON, in this process on one core."""
    return best_rate(lambda: [gen_module._render_sample(i) for i in range(n)], n, repeats)


def jpeg_bound(config: GenerateConfig, n: int, repeats: int) -> float:
    """JPEG encoding alone, of already-rendered patches: the ceiling for any generator."""
    patches = [
        cv2.imdecode(np.frombuffer(gen_module._render_sample(i)[1], np.uint8), cv2.IMREAD_COLOR)
        for i in range(min(n, 500))
    ]
    flags = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]
    k = len(patches)
    return best_rate(lambda: [cv2.imencode(".jpg", p, flags) for p in patches], k, repeats)


def naive_torchvision(config: GenerateConfig, image: Path, n: int, repeats: int) -> float:
    """The straightforward pipeline: torchvision transforms on a PIL image, PIL JPEG save."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    torch.set_num_threads(1)
    aug = config.augment
    pipeline = T.Compose(
        [
            T.RandomResizedCrop(
                config.size,
                scale=(aug.crop_scale_min, 1.0),
                ratio=(aug.aspect_ratio_min, 1 / aug.aspect_ratio_min),
            ),
            T.RandomRotation(aug.rotation_degrees),
            T.RandomHorizontalFlip(aug.flip_prob),
            T.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue),
        ]
    )
    photo = Image.open(image).convert("RGB")

    def run() -> None:
        for _ in range(n):
            pipeline(photo).save(io.BytesIO(), format="JPEG", quality=config.jpeg_quality)

    return best_rate(run, n, repeats)


def end_to_end(config: GenerateConfig, image: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = generate(config, [image], out, workers=workers, progress=False)
        seconds = time.perf_counter() - start
    return report.samples_written / seconds


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(1)
    config = GenerateConfig(n=args.n_core, size=args.size, jpeg_quality=args.jpeg_quality)
    image = args.image
    print(
        f"# sslx generate benchmark, {date.today()}, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, cv2 {cv2.__version__}"
    )
    print(f"# image {image.name}, {args.size} px, JPEG q{args.jpeg_quality}")

    start_worker(config, image)
    bound = jpeg_bound(config, args.n_core, args.repeats)
    ours = ours_per_core(config, args.n_core, args.repeats)
    naive = naive_torchvision(config, image, args.n_naive, args.repeats)
    print("\n## per core (one process, one thread)")
    print(f"{'JPEG encode only (bound)':34s} {bound:8.0f} patches/s")
    print(f"{'sslx generate':34s} {ours:8.0f} patches/s   {ours / bound:.2f}x of bound")
    print(
        f"{'naive torchvision + PIL save':34s} {naive:8.0f} patches/s   "
        f"sslx is {ours / naive:.1f}x faster"
    )

    scaling_config = GenerateConfig(
        n=args.n_scaling,
        size=args.size,
        jpeg_quality=args.jpeg_quality,
        shard_size=max(1, args.n_scaling // 8),
    )
    one = end_to_end(scaling_config, image, 1)
    two = end_to_end(scaling_config, image, 2)
    print(f"\n## end to end, {args.n_scaling} patches in 8 shards, start-up included")
    print(f"{'1 worker':34s} {one:8.0f} patches/s")
    print(f"{'2 workers':34s} {two:8.0f} patches/s   scaling {two / one:.2f}x")
    print(f"projected time for 1M patches with 2 workers: {1e6 / two / 60:.1f} min")


if __name__ == "__main__":
    main()
