"""The ablation table as a grouped bar plot (`sslx viz ablation`'s ablation.png)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from sslx.atomic import write_png_atomic

if TYPE_CHECKING:
    from sslx.probe.ablation import RowSummary


def plot_ablation(rows: list[RowSummary], layers: tuple[str, ...], path: Path) -> None:
    """One group of bars per layer, one bar per row (error bar: the spread), the paper's
    values as black diamonds on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=120)
    width = 0.84 / len(rows)
    colours = plt.get_cmap("tab10")
    for k, r in enumerate(rows):
        xs = [i - 0.42 + (k + 0.5) * width for i in range(len(layers))]
        means, spreads = [r.mean(x) for x in layers], [r.spread(x) for x in layers]
        ax.bar(
            xs,
            means,
            width,
            yerr=spreads,
            capsize=2,
            color=colours((ord(r.row.letter) - ord("a")) % 10),  # ROWS are (a)..(j), in order
            label=f"({r.row.letter}) {r.row.label}",
        )
        ax.scatter(
            xs,
            r.row.paper,
            marker="D",
            s=14,
            color="black",
            zorder=3,
            label="paper" if k == 0 else None,
        )
    ax.set_xticks(range(len(layers)), layers)
    values = [v for r in rows for layer in layers for v in (r.mean(layer), *r.row.paper)]
    ax.set_ylim(max(0.0, math.floor(min(values) / 10) * 10 - 10), max(values) + 5)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("augmentation ablation: linear probes (bars: mean ± spread; ◆ paper)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    write_png_atomic(path, fig)
    plt.close(fig)
