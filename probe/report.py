"""Probe results people can read: markdown tables, JSON, CSV, the accuracy-per-layer plot,
and report.html, all of them in one page (`sslx.probe.html`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from sslx.atomic import write_json_atomic, write_png_atomic, write_text_atomic
from sslx.probe.evaluation_report import (
    CLUSTER_PNG,
    CSV_COLUMNS,
    KNN_PNG,
    axis_top,
    chance_line,
    evaluation_csv_rows,
    evaluation_tables,
    figure_title,
    network_legend,
    network_style,
    percent_rows,
    plot_evaluations,
)
from sslx.probe.html import NUMBER, REPORT_NAME, NetworkPanel, report_page
from sslx.probe.reference_report import (
    ReferenceView,
    compare,
    difference_rows,
    published_rows,
    reference_lines,
    reference_notes,
    references_json,
)
from sslx.probe.references import reference_sets
from sslx.probe.run import ProbeResult

PLOT_ALT = {  # report.html's alt text of each plot write_report may make
    "accuracy.png": "linear-probe top-1 accuracy per layer, one line per network",
    KNN_PNG: "weighted kNN top-1 per layer, one panel per setting, one line per network",
    CLUSTER_PNG: "k-means NMI, AMI and ARI per layer, one line per network",
}


def table_rows(results: list[ProbeResult], metric: str = "top1") -> list[list[str]]:
    """The header, then one row per network: its name and the accuracy (%) per layer. Both
    results.md and report.html are made from these rows, so they show the same table."""
    return percent_rows(f"{metric} (%)", results, lambda r, n: getattr(r, metric).get(n))


def markdown_table(results: list[ProbeResult], metric: str = "top1") -> str:
    """One row per network, one column per layer, accuracy in percent."""
    return _markdown(table_rows(results, metric))


def _markdown(table: list[list[str]]) -> str:
    """A pipe table: numbers right-aligned, a column of words (a source) left-aligned."""
    header, *rows = table
    words = {i for row in rows for i, cell in enumerate(row) if i and not NUMBER.match(cell)}
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- | "
        + " | ".join("---" if i in words else "---:" for i in range(1, len(header)))
        + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def dims_line(name: str, input_size: int, dims: dict[str, int]) -> str:
    text = ", ".join(f"{n} {d}" for n, d in dims.items())
    return f"{name} ({input_size} px) probe dims: {text}"


def write_json(
    results: list[ProbeResult], meta: dict, path: Path, view: ReferenceView | None = None
) -> None:
    """The settings, the measured results and, with `--reference`, the published rows
    under their own key (`references_json`), never among the results."""
    payload = {**meta, "results": [r.to_dict() for r in results]}
    if view is not None:
        payload["references"] = references_json(view)
    write_json_atomic(path, payload, indent=2)


def write_csv(results: list[ProbeResult], path: Path) -> None:
    """One row per (network, layer) of the linear probes; with kNN or cluster results, an
    `eval` column and NMI, AMI, ARI columns, and their rows (`evaluation_csv_rows`)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    more = any(r.knn or r.cluster for r in results)
    extra = (list(CSV_COLUMNS), ["linear", "", "", ""]) if more else ([], [])
    writer.writerow(["name", "input_size", "layer", "dim", "top1", "top5", *extra[0]])
    for r in results:
        for n, dim in r.dims.items():
            if n in r.top1:
                row = [r.name, r.input_size, n, dim, f"{r.top1[n]:.4f}", f"{r.top5[n]:.4f}"]
                writer.writerow([*row, *extra[1]])
        writer.writerows(evaluation_csv_rows(r))
    write_text_atomic(path, text.getvalue())


def plot_accuracy(
    results: list[ProbeResult],
    path: Path,
    data: dict | None = None,
    view: ReferenceView | None = None,
) -> None:
    """`accuracy_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = accuracy_figure(results, data or {}, view)
    write_png_atomic(path, fig)
    plt.close(fig)


def accuracy_figure(results: list[ProbeResult], data: dict, view: ReferenceView | None = None):
    """Top-1 accuracy per layer, one line per network (the paper's Figure 2), titled with the
    dataset and its held-out split, with chance (1 / classes) drawn. The axis starts at 0 so
    that a 1-point difference looks like one. With `view`, each published row is a dashed
    line at the plotted layers it has, its label naming its source and dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    published = reference_lines(view, list(results[0].dims)) if view else []
    fig, ax = plt.subplots(figsize=(9.6 if published else 6.4, 4.4), dpi=120)
    for i, r in enumerate(results):
        layers = list(r.dims)
        ax.plot(layers, [100 * r.top1[n] for n in layers], label=r.name, **network_style(i))
    for label, values, style in published:
        ax.plot(list(values), list(values.values()), lw=1, alpha=0.8, label=label, **style)
    chance_line(ax, data)
    top = max(
        [100 * v for r in results for v in r.top1.values()]
        + [v for _, vs, _ in published for v in vs.values()]
    )
    ax.set_ylim(0, axis_top(top))
    ax.set_xlabel("layer (frozen; a linear probe on each)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(figure_title("Linear probes per layer", data), fontsize="medium")
    ax.grid(alpha=0.3)
    # With published rows, beside the axes: their dashed lines would hide behind it.
    network_legend(ax, len(results), beside=bool(published))
    fig.tight_layout()
    return fig


def write_report(
    results: list[ProbeResult],
    meta: dict,
    out: Path,
    panels: Sequence[NetworkPanel] = (),
    references: Sequence[str] = (),
) -> str:
    """Write results.{md,json,csv}, accuracy.png (with linear probes), knn.png and
    cluster.png (with those evaluations) and report.html into `out`; return the markdown.
    `panels` (`sslx.probe.html.network_panels`) add each probed network's filters and
    training config to report.html. `references` (`--reference` sets) add the published
    rows below ours in each, apart from them; results.csv stays measured numbers only."""
    out.mkdir(parents=True, exist_ok=True)
    linear = [r for r in results if r.top1]  # none with --eval knn or cluster alone
    tables = [table_rows(linear, "top1"), table_rows(linear, "top5")] if linear else []
    tables += evaluation_tables(results)
    notes = [dims_line(r.name, r.input_size, r.dims) for r in results]
    sections = [*map(_markdown, tables), "\n".join(f"- {note}" for note in notes)]
    training = {p.name: p.training for p in panels}  # what pairs a supervised row
    view = compare(reference_sets(references), linear, meta.get("data") or {}, training)
    published: list[list[list[str]]] = []
    if view.sets:
        published = [published_rows(view)]
        published += [difference_rows(view)] if view.comparisons else []
        sections += [
            "## Published numbers (not measured here)",
            f"--reference {','.join(s.name for s in view.sets)}: each row as published, "
            "with its source.",
            *map(_markdown, published),
            "\n".join(f"- {note}" for note in reference_notes(view)),
        ]
    text = "\n\n".join(sections)
    write_text_atomic(out / "results.md", text + "\n")
    write_json(results, meta, out / "results.json", view if view.sets else None)
    write_csv(results, out / "results.csv")
    plots = ["accuracy.png"] if linear else []
    if linear:
        plot_accuracy(linear, out / "accuracy.png", meta.get("data"), view)
    plots += plot_evaluations(results, out, meta.get("data"))
    # The page embeds the very PNG written above, and the panels of the networks probed so
    # far (the report is rewritten after each network).
    probed = {r.name for r in results}
    shown = [p for p in panels if p.name in probed]
    pictures = [((out / name).read_bytes(), PLOT_ALT[name]) for name in plots]
    title = "Linear probes per layer" if plots == ["accuracy.png"] else "Per-layer evaluations"
    args = (meta, tables, notes, pictures, shown, published, reference_notes(view), title)
    page = report_page(*args)
    write_text_atomic(out / REPORT_NAME, page)
    return text
