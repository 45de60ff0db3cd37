"""Probe results people can read: markdown tables, JSON, CSV and the accuracy-per-layer plot."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from sslx.atomic import write_json_atomic, write_png_atomic, write_text_atomic
from sslx.probe.run import ProbeResult


def markdown_table(results: list[ProbeResult], metric: str = "top1") -> str:
    """One row per network, one column per layer, accuracy in percent."""
    layers = list(results[0].dims)
    lines = [
        f"| {metric} (%) | " + " | ".join(layers) + " |",
        "| --- | " + " | ".join("---:" for _ in layers) + " |",
    ]
    for r in results:
        values = getattr(r, metric)
        cells = " | ".join(f"{100 * values[n]:.1f}" if n in values else "" for n in layers)
        lines.append(f"| {r.name} | {cells} |")
    return "\n".join(lines)


def dims_line(name: str, input_size: int, dims: dict[str, int]) -> str:
    text = ", ".join(f"{n} {d}" for n, d in dims.items())
    return f"{name} ({input_size} px) probe dims: {text}"


def write_json(results: list[ProbeResult], meta: dict, path: Path) -> None:
    payload = {**meta, "results": [r.to_dict() for r in results]}
    write_json_atomic(path, payload, indent=2)


def write_csv(results: list[ProbeResult], path: Path) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["name", "input_size", "layer", "dim", "top1", "top5"])
    for r in results:
        for n, dim in r.dims.items():
            writer.writerow([r.name, r.input_size, n, dim, f"{r.top1[n]:.4f}", f"{r.top5[n]:.4f}"])
    write_text_atomic(path, text.getvalue())


def plot_accuracy(results: list[ProbeResult], path: Path, data: dict | None = None) -> None:
    """`accuracy_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = accuracy_figure(results, data or {})
    write_png_atomic(path, fig)
    plt.close(fig)


def accuracy_figure(results: list[ProbeResult], data: dict):
    """Top-1 accuracy per layer, one line per network (the paper's Figure 2), titled with the
    dataset and its held-out split, with chance (1 / classes) drawn. The axis starts at 0 so
    that a 1-point difference looks like one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for r in results:
        layers = list(r.dims)
        ax.plot(layers, [100 * r.top1[n] for n in layers], marker="o", label=r.name)
    top = max(100 * v for r in results for v in r.top1.values())
    if data.get("classes"):
        chance = 100 / data["classes"]
        ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:.1f}%)")
    ax.set_ylim(0, min(100, 10 * math.ceil(top / 10 + 0.5)))
    ax.set_xlabel("layer (frozen; a linear probe on each)")
    ax.set_ylabel("top-1 accuracy (%)")
    where = f"{data['dataset']}, val: {data['val']}" if "dataset" in data else ""
    ax.set_title(f"Linear probes per layer\n{where}".strip(), fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    return fig


def write_report(results: list[ProbeResult], meta: dict, out: Path) -> str:
    """Write results.{md,json,csv} and accuracy.png into `out`; return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    dims = "\n".join(f"- {dims_line(r.name, r.input_size, r.dims)}" for r in results)
    text = "\n\n".join([markdown_table(results, "top1"), markdown_table(results, "top5"), dims])
    write_text_atomic(out / "results.md", text + "\n")
    write_json(results, meta, out / "results.json")
    write_csv(results, out / "results.csv")
    plot_accuracy(results, out / "accuracy.png", meta.get("data"))
    return text
