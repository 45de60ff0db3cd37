"""`sslx viz ablation`: the paper's augmentation ablation (Table 3) from `sslx probe` folders.

Each probed network is placed in a row of the table by its name (the run folder's name):

- `supervised` or `supervised-seed<k>`: (a) fully supervised;
- `random` or `random-seed<k>`: (b) random features;
- `<method>-<preset>-seed<k>`, preset one of `sslx generate --preset`'s ablation rows:
  that preset's row, (c) none .. (j) all.

A name that fits none of these, two networks for one (row, seed), more than one method
across the preset rows, or a missing conv1..conv4 probe is refused (InputError): a table
that silently mixes runs would look like a result. Torch-free; matplotlib only for the plot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sslx.atomic import write_json_atomic, write_text_atomic
from sslx.errors import InputError
from sslx.probe.ablation_plot import plot_ablation
from sslx.probe.pretext import Curve, plot_curves, read_curve
from sslx.probe.references import TABLE3
from sslx.probe.tables import (
    OverSeeds,
    check_same_dims,
    checkpoint_of,
    curve_json,
    load_results,
    recorded_dims,
    same_settings,
    top1_percent,
)


@dataclass(frozen=True)
class Row:
    letter: str
    key: str  # the name part that places a network here
    label: str
    paper: tuple[float, float, float, float]  # top-1 (%) at conv1..conv4, the paper's Table 3


LAYERS = TABLE3.layers  # conv1..conv4
# The name part that places a network in each row of the paper's Table 3, whose numbers
# and labels are declared once in `sslx.probe.references`.
PLACED_BY = {
    "a": "supervised",
    "b": "random",
    "c": "none",
    "d": "jitter",
    "e": "rotation",
    "f": "scale",
    "g": "rot+jitter",
    "h": "rot+scale",
    "i": "jitter+scale",
    "j": "all",
}
ROWS = tuple(Row(p.mark, PLACED_BY[p.mark], p.label, p.top1) for p in TABLE3.rows)
BY_KEY = {row.key: row for row in ROWS}
REFERENCES = ("supervised", "random")
PRESETS = tuple(row.key for row in ROWS if row.key not in REFERENCES)
# The paper's claim: every row with scale augmentation beats every row without it.
SCALE, NO_SCALE = ("f", "h", "i", "j"), ("c", "d", "e", "g")
CRITERION_LAYERS = ("conv1", "conv2", "conv3")
SEED = re.compile(r"^(?P<stem>.+)-seed(?P<seed>[0-9]+)$")
NAMING = (
    "supervised[-seed<k>], random[-seed<k>] or <method>-<preset>-seed<k> with <preset> one of "
    + ", ".join(PRESETS)
)


@dataclass(frozen=True)
class Placed:
    row: Row
    method: str | None  # None for the reference rows
    seed: int | None
    name: str
    source: Path
    top1: dict[str, float]  # percent
    dims: tuple  # probe dimensions at conv1..conv4: equal for every row of one table
    curve: Curve | None = None  # the pretext curve of the run that made it, if readable


@dataclass
class RowSummary(OverSeeds):
    row: Row
    networks: list[Placed] = field(default_factory=list)


def place(name: str, source: Path) -> tuple[Row, str | None, int | None]:
    """(row, method, seed) of a network name, or InputError naming the rule."""
    match = SEED.match(name)
    stem, seed = (match["stem"], int(match["seed"])) if match else (name, None)
    if stem in REFERENCES:
        return BY_KEY[stem], None, seed
    method, _, preset = stem.rpartition("-")
    # A preset row needs the seed: reproduce.md's `rotnet-all` must not slip in unnoticed.
    if seed is None or not method or preset not in PRESETS:
        raise InputError(f"{source}: cannot place network {name!r} in the table; name it {NAMING}")
    return BY_KEY[preset], method, seed


def read_probe_dir(folder: Path) -> tuple[dict, list[Placed]]:
    """The probe's settings (see `tables.load_results`) and the placed networks."""
    settings, entries, path = load_results(folder)
    networks = []
    for entry in entries:
        row, method, seed = place(entry["name"], folder)
        percent = top1_percent(entry, LAYERS, folder, path)
        dims = recorded_dims(entry, LAYERS)
        curve = read_curve(
            checkpoint_of(entry), method or (row.key if row.key == "supervised" else None)
        )
        networks.append(Placed(row, method, seed, entry["name"], folder, percent, dims, curve))
    return settings, networks


def collect(folders: list[Path]) -> list[RowSummary]:
    """Read every folder, check the networks are one comparable table, group them by row."""
    networks: list[Placed] = []
    for _, (_, placed) in same_settings(folders, read_probe_dir):
        networks += placed
    return summarise(networks)


def summarise(networks: list[Placed]) -> list[RowSummary]:
    """Check the networks are one comparable table and group them by row, in table order."""
    _check_one_table(networks)
    rows = {row.key: RowSummary(row) for row in ROWS}
    for net in networks:
        rows[net.row.key].networks.append(net)
    return [summary for summary in rows.values() if summary.networks]


def _check_one_table(networks: list[Placed]) -> None:
    seen: dict[tuple[str, int | None], Placed] = {}
    for net in networks:
        other = seen.setdefault((net.row.key, net.seed), net)
        if other is not net:
            raise InputError(
                f"two networks for row ({net.row.letter}) seed {net.seed}: {other.name} in "
                f"{other.source} and {net.name} in {net.source}"
            )
    methods = sorted({net.method for net in networks if net.method is not None})
    if len(methods) > 1:
        raise InputError(f"the preset rows mix methods ({', '.join(methods)}); give one method's")
    check_same_dims(networks)


def criterion(rows: list[RowSummary]) -> dict:
    """Per layer of conv1..conv3: the lowest scale row against the highest row without
    scale, and whether the margin exceeds the largest spread of the rows compared."""
    scale = [r for r in rows if r.row.letter in SCALE]
    other = [r for r in rows if r.row.letter in NO_SCALE]
    layers: dict[str, dict] = {}
    for layer in CRITERION_LAYERS:
        if not scale or not other:
            layers[layer] = {"verdict": "n/a"}
            continue
        low = min(scale, key=lambda r: r.mean(layer))
        high = max(other, key=lambda r: r.mean(layer))
        i = LAYERS.index(layer)
        margin = low.mean(layer) - high.mean(layer)
        spread = max(r.spread(layer) for r in scale + other)
        layers[layer] = {
            "lowest_scale_row": low.row.letter,
            "highest_other_row": high.row.letter,
            "margin": margin,
            "largest_spread": spread,
            "paper_margin": min(r.row.paper[i] for r in scale) - max(r.row.paper[i] for r in other),
            "verdict": "PASS" if margin > spread else "FAIL",
        }
    verdicts = [entry["verdict"] for entry in layers.values()]
    met = None if "n/a" in verdicts else all(v == "PASS" for v in verdicts)
    single = sorted(r.row.letter for r in scale + other if len(r.networks) < 2)
    return {"layers": layers, "met": met, "rows_with_one_network": single}


def markdown(rows: list[RowSummary], result: dict, folders: list[Path]) -> str:
    sources = ", ".join(f"`{folder}`" for folder in folders)
    lines = [
        "# Augmentation ablation (the paper's Table 3)",
        "",
        f"Linear-probe top-1 (%) from {sources}. Each cell: mean ± spread over the row's "
        "networks (spread = half the range, (max − min) / 2), then the paper's number in "
        "brackets; n = networks (seeds) in the row. Rows without networks are left out.",
        "",
        "| row | n | " + " | ".join(LAYERS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in LAYERS) + " |",
    ]
    for r in rows:
        cells = " | ".join(
            f"{r.mean(layer):.1f} ± {r.spread(layer):.1f} ({r.row.paper[i]:.1f})"
            for i, layer in enumerate(LAYERS)
        )
        lines.append(f"| ({r.row.letter}) {r.row.label} | {len(r.networks)} | {cells} |")
    lines += ["", "Networks per row:", ""]
    lines += [f"- ({r.row.letter}): " + ", ".join(n.name for n in r.networks) for r in rows]
    lines += [
        "",
        "## The paper's criterion",
        "",
        "At conv1..conv3, the lowest mean of the scale rows present ((f), (h), (i), (j)) is "
        "above the highest mean of the rows without scale present ((c), (d), (e), (g)) by "
        "more than the largest spread among all those rows.",
        "",
        "| layer | lowest scale row | highest row without scale | margin | largest spread "
        "| paper's margin, same rows | verdict |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for layer, c in result["layers"].items():
        if c["verdict"] == "n/a":
            lines.append(f"| {layer} | | | | | | n/a: needs a scale row and a row without |")
            continue
        low, high = _mean_of(rows, c["lowest_scale_row"]), _mean_of(rows, c["highest_other_row"])
        lines.append(
            f"| {layer} | ({c['lowest_scale_row']}) {low[layer]:.1f} "
            f"| ({c['highest_other_row']}) {high[layer]:.1f} | {c['margin']:+.1f} "
            f"| {c['largest_spread']:.1f} | {c['paper_margin']:+.1f} | {c['verdict']} |"
        )
    met = {True: "met", False: "NOT met", None: "not evaluated"}[result["met"]]
    lines += ["", f"Criterion at conv1..conv3: **{met}**."]
    if result["rows_with_one_network"]:  # a spread of 0 is then no measurement of noise
        letters = ", ".join(f"({x})" for x in result["rows_with_one_network"])
        lines.append(f"Rows with one network, so no spread measured: {letters}.")
    return "\n".join(lines + _pretext_lines(rows)) + "\n"


def _pretext_lines(rows: list[RowSummary]) -> list[str]:
    nets = [n for r in rows for n in r.networks if n.curve is not None]
    if not nets:
        return []
    lines = [
        "",
        "## Pretext curves",
        "",
        "Each network's own-task measure, the mean of each training epoch (chance in "
        "brackets), from its run's metrics.jsonl; curves in ablation-pretext.png.",
        "",
        "| network | row | measure | per epoch |",
        "| --- | --- | --- | --- |",
    ]
    for n in nets:
        chance = f" ({n.curve.chance:g})" if n.curve.chance is not None else ""
        means = " → ".join(f"{v:.3f}" for v in n.curve.epoch_means)
        lines.append(f"| {n.name} | ({n.row.letter}) | {n.curve.metric}{chance} | {means} |")
    return lines


def _mean_of(rows: list[RowSummary], letter: str) -> dict[str, float]:
    summary = next(r for r in rows if r.row.letter == letter)
    return {layer: summary.mean(layer) for layer in LAYERS}


def to_json(rows: list[RowSummary], result: dict, folders: list[Path]) -> dict:
    return {
        "probe_dirs": [str(folder) for folder in folders],
        "layers": list(LAYERS),
        "rows": [
            {
                "row": r.row.letter,
                "preset": r.row.key,
                "label": r.row.label,
                "n": len(r.networks),
                "networks": [
                    {
                        "name": n.name,
                        "seed": n.seed,
                        "method": n.method,
                        "probe_dir": str(n.source),
                        "pretext": curve_json(n.curve),
                    }
                    for n in r.networks
                ],
                "top1": {
                    layer: {**cell, "paper": r.row.paper[i]}
                    for i, (layer, cell) in enumerate(r.cells(LAYERS).items())
                },
            }
            for r in rows
        ],
        "criterion": result,
    }


def write_ablation(folders: list[Path], out: Path) -> str:
    """Read, check, then write ablation.{md,json,png} into `out`; return the markdown."""
    rows = collect(folders)  # every check before the first write
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    result = criterion(rows)
    text = markdown(rows, result, folders)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "ablation.md", text)
    write_json_atomic(out / "ablation.json", to_json(rows, result, folders), indent=2)
    plot_ablation(rows, LAYERS, out / "ablation.png")
    preset_rows = [r for r in rows if r.row.key not in REFERENCES]
    curves = [
        (f"({r.row.letter}) {r.row.label}", n.curve)
        for r in preset_rows
        for n in r.networks
        if n.curve
    ]
    if curves:
        plot_curves(curves, out / "ablation-pretext.png")
    return text
