"""The modern-methods table as grouped bars (`sslx viz modern`'s modern.png)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from sslx.atomic import write_png_atomic

if TYPE_CHECKING:
    from sslx.probe.modern import TableRow


def plot_modern(
    rows: list[TableRow], layers: dict[str, tuple[str, ...]], labels: dict[str, str], path: Path
) -> None:
    """One panel per architecture; in it one group of bars per layer and one bar per row
    (error bar: the spread). The random row is a dashed line per layer: the bar to beat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = [a for a in layers if any(r.key.arch == a for r in rows)]
    fig, axes = plt.subplots(len(archs), 1, figsize=(11, 4.2 * len(archs)), dpi=110, squeeze=False)
    colours = plt.get_cmap("tab20")
    for ax, arch in zip(axes[:, 0], archs, strict=True):
        table = [r for r in rows if r.key.arch == arch]
        bars = [r for r in table if r.key.method != "random"]
        random = next((r for r in table if r.key.method == "random"), None)
        names = layers[arch]
        width = 0.84 / max(len(bars), 1)
        methods = list(dict.fromkeys(r.key.method for r in bars))  # a colour pair each
        for k, r in enumerate(bars):
            shade = 2 * methods.index(r.key.method) + (r.key.preset not in (None, "all"))
            xs = [i - 0.42 + (k + 0.5) * width for i in range(len(names))]
            ax.bar(
                xs,
                [r.mean(x) for x in names],
                width,
                yerr=[r.spread(x) for x in names],
                capsize=2,
                color=colours(shade % 20),
                hatch="//" if r.key.preset == "none" else None,
                label=f"{r.key.label} (n={len(r.networks)})",
            )
        if random is not None:
            for i, layer in enumerate(names):
                ax.hlines(
                    random.mean(layer),
                    i - 0.45,
                    i + 0.45,
                    colors="black",
                    linestyles="dashed",
                    label="random" if i == 0 else None,
                )
        values = [r.mean(x) for r in table for x in names]
        ax.set_ylim(max(0.0, math.floor(min(values) / 5) * 5 - 5), max(values) + 3)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(f"{labels[arch]}: linear probes on CIFAR-10 (bars: mean ± spread)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    write_png_atomic(path, fig)
    plt.close(fig)
