"""The kNN and cluster-quality results people read: one table per measure (kNN top-1 per
setting, NMI, AMI, ARI), their rows of results.csv, and one plot each (knn.png,
cluster.png), in the style of the linear probe's (`sslx.probe.report`)."""

from __future__ import annotations

import math
from pathlib import Path

from sslx.atomic import write_png_atomic
from sslx.probe.run import ProbeResult

CLUSTER_SCORES = ("nmi", "ami", "ari")
CSV_COLUMNS = ("eval", "nmi", "ami", "ari")  # appended to the linear columns when used
KNN_PNG, CLUSTER_PNG = "knn.png", "cluster.png"


def knn_keys(results: list[ProbeResult]) -> list[str]:
    """The kNN settings ("k20_t0.07", ...) the results hold, in their order."""
    keys: dict[str, None] = {}
    for r in results:
        for per_setting in r.knn.values():
            keys.update(dict.fromkeys(per_setting))
    return list(keys)


def _measures(results: list[ProbeResult]) -> list[tuple[str, str, object]]:
    """(table title, figure label, getter of a network's value at a layer) per measure."""
    out = []
    for key in knn_keys(results):
        title = f"kNN top-1, {key} (%)"
        out.append((title, key, lambda r, n, key=key: r.knn.get(n, {}).get(key, {}).get("top1")))
    if any(r.cluster for r in results):
        for score in CLUSTER_SCORES:
            out.append(
                (f"{score.upper()} (%)", score, lambda r, n, s=score: r.cluster.get(n, {}).get(s))
            )
    return out


def percent_rows(title: str, results: list[ProbeResult], value) -> list[list[str]]:
    """A table of every measure (the linear probes' too, `report.table_rows`): the header
    (`title`, then the first result's layers), then one row per network with
    `value(result, layer)` in percent, one decimal, empty where there is none."""
    layers = list(results[0].dims)
    rows = [[title, *layers]]
    for r in results:
        cells = (value(r, n) for n in layers)
        rows.append([r.name, *("" if v is None else f"{100 * v:.1f}" for v in cells)])
    return rows


def evaluation_tables(results: list[ProbeResult]) -> list[list[list[str]]]:
    """One table per measure (`percent_rows`)."""
    if not results:
        return []
    return [percent_rows(title, results, value) for title, _, value in _measures(results)]


def figure_title(what: str, data: dict) -> str:
    """A figure's title: what it shows, then the dataset and its held-out split."""
    where = f"{data['dataset']}, val: {data['val']}" if "dataset" in data else ""
    return f"{what}\n{where}".strip()


def chance_line(ax, data: dict) -> None:
    """Chance, 1 / classes, as a dotted line, when the number of classes is known."""
    if data.get("classes"):
        chance = 100 / data["classes"]
        ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:.1f}%)")


def network_style(i: int) -> dict:
    """Network i's line: matplotlib's ten colours, then the same colours dashed, then
    dotted, so that no two of up to 30 networks look alike."""
    return {"marker": "o", "ls": ("-", "--", "-.")[i // 10 % 3]}


def network_legend(ax, lines: int, beside: bool = False) -> None:
    """A legend inside the axes for a few lines; beside them for more (or when `beside`),
    where it hides none."""
    if beside or lines > 6:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.legend(fontsize="small", loc="lower left")


def axis_top(top: float) -> float:
    """The y-axis' upper end above a top value (%): the next ten with room, at most 100."""
    return min(100, 10 * math.ceil(top / 10 + 0.5))


def evaluation_csv_rows(r: ProbeResult) -> list[list[str]]:
    """A network's rows for results.csv: name, input_size, layer, dim, top1, top5, eval,
    nmi, ami, ari - one per kNN setting and layer, one per layer for the clustering."""
    rows = []
    for layer, per_setting in r.knn.items():
        for key, scores in per_setting.items():
            top5 = f"{scores['top5']:.4f}" if "top5" in scores else ""
            head = [r.name, r.input_size, layer, r.dims.get(layer, ""), f"{scores['top1']:.4f}"]
            rows.append([*head, top5, f"knn_{key}", "", "", ""])
    for layer, scores in r.cluster.items():
        head = [r.name, r.input_size, layer, r.dims.get(layer, ""), "", "", "cluster"]
        rows.append([*head, *(f"{scores[s]:.4f}" for s in CLUSTER_SCORES)])
    return rows


def plot_evaluations(results: list[ProbeResult], out: Path, data: dict | None) -> list[str]:
    """knn.png and cluster.png for the evaluations the results hold; their names."""
    import matplotlib.pyplot as plt

    written = []
    for name, kind in ((KNN_PNG, "knn"), (CLUSTER_PNG, "cluster")):
        if any(getattr(r, kind) for r in results):
            fig = evaluation_figure(results, kind, data or {})
            write_png_atomic(out / name, fig)
            plt.close(fig)
            written.append(name)
    return written


def evaluation_figure(results: list[ProbeResult], kind: str, data: dict):
    """One panel per kNN setting (kind "knn", chance at 1 / classes) or per cluster score
    (kind "cluster"), each with one line per network over the layers, titled with the
    dataset and its held-out split; the axis starts at 0 (or at a negative score)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = [m for m in _measures(results) if (m[1] in CLUSTER_SCORES) == (kind == "cluster")]
    fig, axes = plt.subplots(
        1, len(measures), figsize=(4.2 * len(measures), 4.4), dpi=120, squeeze=False
    )
    layers = list(results[0].dims)
    values = []
    for ax, (_, label, value) in zip(axes[0], measures, strict=True):
        for i, r in enumerate(results):
            ys = [value(r, n) for n in layers]
            shown = [100 * y if y is not None else math.nan for y in ys]
            values += [y for y in shown if not math.isnan(y)]
            ax.plot(layers, shown, label=r.name, **network_style(i))
        if kind == "knn":
            chance_line(ax, data)
        title = label.replace("k", "k = ", 1).replace("_t", ", T = ") if kind == "knn" else label
        ax.set_title(title if kind == "knn" else label.upper(), fontsize="medium")
        ax.set_xlabel("layer (frozen)")
        ax.grid(alpha=0.3)
    top = max(values, default=0.0)
    low = min(0.0, 10 * math.floor(min(values, default=0.0) / 10))
    for ax in axes[0]:
        ax.set_ylim(low, axis_top(top))
    axes[0][0].set_ylabel("top-1 accuracy (%)" if kind == "knn" else "score (%)")
    network_legend(axes[0][-1], len(results))
    what = "Weighted kNN top-1 per layer (memory: the training split)"
    if kind == "cluster":
        what = "k-means clusters (k = classes) against the labels, per layer"
    fig.suptitle(figure_title(what, data), fontsize="medium")
    fig.tight_layout()
    return fig
