"""The measuring processes of benchmarks/gpu.py (one fresh process per measurement).

    python benchmarks/gpu_child.py train SPEC.json RESULT.json    # sslx train, timed
    python benchmarks/gpu_child.py cluster SPEC.json RESULT.json  # the clustering step

`train` runs `sslx train` through the CLI's own entry point in this process, with two
hooks in the training loop that change nothing it computes: every batch fetch from the
loader is timed (the time the step waits for data), and GPU utilisation is sampled while
the steps run. `cluster` runs DeepCluster's clustering step on synthetic clustered
features generated on the device in batches, as the network would hand them over.
"""

from __future__ import annotations

import itertools
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch


class FetchTimes:
    """(epoch, fetch start, fetch end) of every batch the loop takes from its loader."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float]] = []
        self.epochs = 0

    def wrap(self, loader):
        epoch, self.epochs = self.epochs, self.epochs + 1
        iterator = iter(loader)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.rows.append((epoch, t0, time.perf_counter()))
            yield batch

    def summary(self, warmup: int) -> dict:
        """Steady state: step-to-step intervals within an epoch, after `warmup` steps; the
        share of them spent waiting for the next batch."""
        rows = self.rows[warmup:]
        total = wait = 0.0
        for (e0, s0, _), (e1, s1, f1) in itertools.pairwise(rows):
            if e0 == e1:
                total += s1 - s0
                wait += f1 - s1
        return {"steady_seconds": total, "wait_seconds": wait, "steps": len(self.rows)}


class UtilSampler(threading.Thread):
    """GPU utilisation (%) every 0.25 s: torch.cuda.utilization (pynvml), else nvidia-smi."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(daemon=True)
        self.device, self.samples, self.source = device, [], None
        self.running = threading.Event()
        self.done = threading.Event()

    def read(self) -> float | None:
        if self.source in (None, "torch.cuda.utilization"):
            try:
                value = float(torch.cuda.utilization(self.device))
                self.source = "torch.cuda.utilization"
                return value
            except Exception:  # no pynvml: ask nvidia-smi
                self.source = "nvidia-smi" if shutil.which("nvidia-smi") else "none"
        if self.source == "nvidia-smi":
            uuid = str(torch.cuda.get_device_properties(self.device).uuid)
            uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
            query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
            for target in ([f"--id={uuid}"], []):
                done = subprocess.run(query + target, capture_output=True, text=True)
                if done.returncode == 0 and done.stdout.strip():
                    return float(done.stdout.split()[0])
            self.source = "none"
        return None

    def run(self) -> None:
        while not self.done.is_set():
            if self.running.is_set() and self.source != "none":
                value = self.read()
                if value is not None:
                    self.samples.append(value)
            time.sleep(0.25)


def run_train(spec: dict) -> dict:
    from sslx import cli
    from sslx.train import loop

    device = torch.device(spec["device"])
    fetches, sampler = FetchTimes(), None
    if device.type == "cuda":
        sampler = UtilSampler(device)
        sampler.start()
    original = loop._epoch_batches

    def timed_batches(run, draws):
        loader, steps = original(run, draws)
        return fetches.wrap(loader), steps

    loop._epoch_batches = timed_batches
    original_step = loop.train_step

    def step(run, batch, autocast, epoch_steps):  # sample once the warm-up steps are done
        if sampler is not None and len(fetches.rows) > spec["warmup"]:
            sampler.running.set()
        return original_step(run, batch, autocast, epoch_steps)

    loop.train_step = step
    t0 = time.perf_counter()
    code = cli.main(spec["argv"])
    result = {"rc": code, "wall_seconds": time.perf_counter() - t0}
    result.update(fetches.summary(spec["warmup"]))
    if sampler is not None:
        sampler.done.set()
        result["util"] = sampler.samples
        result["util_source"] = sampler.source
        result["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return result


def synthetic_batches(n: int, width: int, centres: int, batch: int, device: torch.device):
    """Clustered "fc7" features, generated on the device batch by batch: `centres` means
    with a decaying spectrum (as real features have) plus noise."""
    g = torch.Generator(device=device).manual_seed(0)
    decay = torch.logspace(0, -1.5, width, device=device)
    means = torch.randn(centres, width, generator=g, device=device) * decay
    for a in range(0, n, batch):
        rows = min(batch, n - a)
        labels = torch.randint(0, centres, (rows,), generator=g, device=device)
        noise = torch.randn(rows, width, generator=g, device=device)
        yield means[labels] + 0.7 * noise * decay


def run_cluster(spec: dict) -> dict:
    from sslx.common.kmeans import resolve_backend
    from sslx.train.methods.deepcluster.clustering import cluster_step

    device = torch.device(spec["device"])
    if device.type == "cuda":  # "cuda" names no index: the current device
        device = torch.device(
            "cuda", torch.cuda.current_device() if device.index is None else device.index
        )
        torch.cuda.set_device(device)
    backend = resolve_backend(spec["backend"], device)
    if spec["backend"] == "faiss" and device.type == "cuda" and backend.gpu is None:
        return {"skipped": f"FAISS's GPU path: {backend.reason}"}
    n, width, k, batch = spec["n"], spec["width"], spec["k"], spec["batch"]
    t0 = time.perf_counter()
    labels, result = cluster_step(
        synthetic_batches(n, width, k, batch, device),
        [n],
        k,
        width=width,
        device=device,
        batch=batch,
        pca_dim=spec["pca_dim"],
        iterations=spec["iterations"],
        seed=0,
        backend=backend,
    )
    out = {
        "backend": backend.name,
        "kmeans_device": str(backend.device),
        "reason": backend.reason,
        "seconds_features": result.seconds_features,
        "seconds_pca": result.seconds_pca,
        "seconds_kmeans": result.seconds_kmeans,
        "wall_seconds": time.perf_counter() - t0,
        "non_empty": int((np.bincount(labels) > 0).sum()),
        "host_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return out


def main() -> None:
    mode, spec_path, result_path = sys.argv[1:4]
    spec = json.loads(Path(spec_path).read_text())
    result = run_train(spec) if mode == "train" else run_cluster(spec)
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
