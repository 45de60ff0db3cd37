"""benchmarks/gpu.py's report: the machine's line and a training run's row."""

from __future__ import annotations

import importlib.util
import json
import platform
import statistics
from datetime import date
from pathlib import Path

import torch
import yaml

from sslx.common.device import usable_cores

TRAIN_HEADER = (
    "| method | px | batch | compile | img/s | data wait | GPU util | peak GPU memory "
    "| clustering s (features, PCA, k-means) |\n|---|---|---|---|---|---|---|---|---|"
)


def environment(device: torch.device, workers: int, quick: bool) -> str:
    from sslx.common.kmeans import (
        _faiss,
        faiss_gpu_problem,
        faiss_import_problem,
    )

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.processor() or platform.machine()})"
    faiss = _faiss()
    if faiss is None:
        faiss_line = f"unusable: {faiss_import_problem()} (k-means on torch)"
    elif device.type == "cuda":
        problem = faiss_gpu_problem(device.index or 0)
        faiss_line = f"{faiss.__version__}, GPU path: {problem or 'works'}"
    else:
        faiss_line = f"{faiss.__version__} (CPU)"
    wds = "installed" if importlib.util.find_spec("webdataset") else "missing"
    return "\n".join(
        [
            f"# sslx on {name}{' (--quick: tiny sizes, not a measurement)' if quick else ''}",
            "",
            f"{date.today()}, {platform.machine()}, {usable_cores()} usable cores, Python "
            f"{platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
            f"faiss {faiss_line}, webdataset {wds}; loader workers per run: {workers}.",
        ]
    )


def train_row(method: str, size: int, compile_: bool, run: Path, result: dict) -> str:
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "img_per_s" in r]
    steady = [r["img_per_s"] for r in steps[2:]] or [r["img_per_s"] for r in steps[-1:]]
    config = yaml.safe_load((run / "config.yaml").read_text())
    wait = result["wait_seconds"] / result["steady_seconds"] if result["steady_seconds"] else None
    util = result.get("util") or []
    peak = result.get("peak_bytes")
    clustering = next((r for r in records if r.get("event") == "clustering"), None)
    cells = [
        method,
        str(size),
        str(config["optim"]["batch_size"]),
        "yes" if compile_ else "no",
        f"{statistics.median(steady):,.0f}" if steady else "-",
        f"{wait:.0%}" if wait is not None else "-",
        f"{statistics.mean(util):.0f}% ({len(util)} samples)" if util else "-",
        f"{peak / 2**30:.1f} GiB" if peak else "-",
        "{:.1f}, {:.1f}, {:.1f} ({})".format(
            clustering["seconds_features"],
            clustering["seconds_pca"],
            clustering["seconds_kmeans"],
            clustering["kmeans_backend"],
        )
        if clustering
        else "",
    ]
    return "| " + " | ".join(cells) + " |"
