"""The published rows `--reference` names, as the reports show them: a table of the rows
with their sources, ours minus theirs for each probed network that is a row's counterpart,
results.json's `references` section and the dashed lines of accuracy.png. Torch-free.

A row is compared with a probed network only when that network is its counterpart by a
record sslx keeps (the `--random-init` network for a random row, a checkpoint whose method
is `supervised` for a supervised row) and was measured on the same benchmark (dataset,
classes and architecture). Otherwise the reports say why nothing is subtracted. Whatever
else differs (input size, the held-out images, the probe's pooling) is stated beside the
difference, never left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sslx.probe.references import RANDOM, SUPERVISED, Published, ReferenceSet

if TYPE_CHECKING:
    from sslx.probe.run import ProbeResult

ARCH_LABELS = {"alexnet": "AlexNet", "resnet18": "ResNet-18"}


@dataclass(frozen=True)
class Comparison:
    """One probed network against one published row."""

    ours: str
    reference: ReferenceSet
    row: Published
    mismatch: tuple[str, ...]  # why it is not the same benchmark; empty: it is
    stated: tuple[str, ...]  # what else differs, stated beside the numbers
    delta: dict[str, float]  # ours - theirs in percentage points, at the layers both have


@dataclass(frozen=True)
class ReferenceView:
    """Everything the reports show of the chosen sets for these results."""

    sets: list[ReferenceSet]
    comparisons: list[Comparison]
    not_compared: list[tuple[ReferenceSet, Published, str]]  # (set, row, why)

    @property
    def layers(self) -> list[str]:
        """Every layer of the chosen sets, in their order."""
        return list(dict.fromkeys(layer for s in self.sets for layer in s.layers))

    def number(self, reference: ReferenceSet) -> int:
        """The source's footnote number, in order of first use."""
        sources = list(dict.fromkeys(s.source.key for s in self.sets))
        return sources.index(reference.source.key) + 1


def is_counterpart(row: Published, result: ProbeResult, training: dict | None = None) -> bool:
    """Whether a probed network is the row's counterpart by what sslx records of it: its
    source, and its checkpoint's training config when known (a supervised run that started
    from another checkpoint, the paper's Table 4 protocol, is not fully supervised)."""
    if row.kind == RANDOM:
        return "random_init" in result.source
    if row.kind == SUPERVISED:
        started_elsewhere = bool(training and (training.get("init") or training.get("freeze")))
        return result.source.get("method") == SUPERVISED and not started_elsewhere
    return False  # e.g. Table 3's preset rows: no record ties a checkpoint to a preset


def network_arch(result: ProbeResult) -> str | None:
    """The probed network's architecture, from its random-init or checkpoint record."""
    for key in ("random_init", "model"):
        record = result.source.get(key)
        if isinstance(record, dict) and isinstance(record.get("arch"), str):
            return record["arch"]
    return None


def benchmark_mismatch(reference: ReferenceSet, data: dict, arch: str | None) -> list[str]:
    """Why our numbers and the set's are not the same benchmark (empty: they are)."""
    bench = reference.benchmark
    dataset, classes = data.get("dataset"), data.get("classes")
    if bench.dataset == "imagenet":  # sslx reads ILSVRC-2012 as an image folder
        same_data = dataset == "imagefolder" and classes == bench.classes
    else:
        same_data = dataset == bench.dataset and classes == bench.classes
    why = []
    if not same_data:
        why.append(f"dataset: ours {dataset} ({classes} classes), theirs {bench.label}")
    if arch != bench.arch:
        why.append(f"architecture: ours {arch or 'not recorded'}, theirs {bench.arch}")
    return why


def stated_differences(
    reference: ReferenceSet, row: Published, result: ProbeResult, data: dict
) -> list[str]:
    """What differs even on the same benchmark: input size, held-out images, protocol."""
    bench = reference.benchmark
    theirs = f"{bench.input_size} px" if bench.input_size else "not stated"
    stated = []
    if bench.input_size != result.input_size:
        stated.append(f"input: ours {result.input_size} px, theirs {theirs}")
    if bench.dataset == "imagenet":
        stated.append("ours is an image folder of 1000 classes, taken for ILSVRC-2012")
    stated.append(f"val: ours {data.get('val', 'not recorded')}, theirs {bench.val}")
    stated.append(f"their probes: {bench.protocol}")
    if row.note:
        stated.append(row.note)
    return stated


def compare(
    sets: Sequence[ReferenceSet],
    results: Sequence[ProbeResult],
    data: dict,
    training: dict[str, dict | None] | None = None,
) -> ReferenceView:
    """Each row of `sets` against each of its counterparts among `results` (those with
    linear probes), ours - theirs at the layers both have when the benchmark is the same.
    `training`: each network's training config by name, where known."""
    training = training or {}
    comparisons, not_compared = [], []
    for reference in sets:
        for row in reference.rows:
            partners = [
                r for r in results if r.top1 and is_counterpart(row, r, training.get(r.name))
            ]
            if not partners:
                not_compared.append((reference, row, _unpaired(row)))
            for r in partners:
                mismatch = benchmark_mismatch(reference, data, network_arch(r))
                theirs = reference.percent(row)
                delta = {
                    layer: 100 * r.top1[layer] - value
                    for layer, value in theirs.items()
                    if layer in r.top1 and not mismatch
                }
                stated = [] if mismatch else stated_differences(reference, row, r, data)
                comparisons.append(
                    Comparison(r.name, reference, row, tuple(mismatch), tuple(stated), delta)
                )
    return ReferenceView(list(sets), comparisons, not_compared)


def _unpaired(row: Published) -> str:
    if row.kind == RANDOM:
        return "no --random-init network was probed"
    if row.kind == SUPERVISED:
        return "no checkpoint of method supervised, trained from scratch, was probed"
    return "no probed network is paired with it automatically"


def published_rows(view: ReferenceView) -> list[list[str]]:
    """The header, then one row per published row: its numbers, what they were measured
    on and their source (footnote number, authors, year, table)."""
    layers = view.layers
    table = [["published top-1 (%)", *layers, "measured on", "source"]]
    for reference in view.sets:
        numbers = {row: reference.percent(row) for row in reference.rows}
        for row, values in numbers.items():
            cells = [f"{values[layer]:.1f}" if layer in values else "" for layer in layers]
            source = f"[{view.number(reference)}] {reference.source.short}"
            table.append([row.name, *cells, measured_on(reference), source])
    return table


def measured_on(reference: ReferenceSet) -> str:
    bench = reference.benchmark
    size = f", {bench.input_size} px" if bench.input_size else ""
    return f"{bench.label}, {ARCH_LABELS.get(bench.arch, bench.arch)}{size}"


def difference_rows(view: ReferenceView) -> list[list[str]]:
    """The header, then one row per comparison: ours - theirs per layer (points), or
    nothing and why it is not the same benchmark; then what else differs."""
    layers = view.layers
    table = [["ours − theirs (points)", "theirs", *layers, "stated"]]
    for c in view.comparisons:
        cells = [f"{c.delta[layer]:+.1f}" if layer in c.delta else "" for layer in layers]
        note = (
            "not the same benchmark (" + "; ".join(c.mismatch) + ")"
            if c.mismatch
            else "; ".join(c.stated)
        )
        theirs = f"{c.row.name} [{view.number(c.reference)}]"
        table.append([c.ours, theirs, *cells, note])
    return table


def reference_notes(view: ReferenceView) -> list[str]:
    """The sources as footnotes, then the rows nothing was compared with, and why."""
    notes, seen = [], set()
    for reference in view.sets:
        if reference.source.key not in seen:
            seen.add(reference.source.key)
            notes.append(f"[{view.number(reference)}] {reference.source.citation()}")
    by_reason: dict[str, list[str]] = {}
    for reference, row, why in view.not_compared:
        by_reason.setdefault(why, []).append(f"{row.name} [{view.number(reference)}]")
    notes += [f"Not compared ({why}): {', '.join(rows)}." for why, rows in by_reason.items()]
    return notes


def references_json(view: ReferenceView) -> dict:
    """results.json's `references`: published numbers, each with its source's key, kept
    apart from the measured `results`; the comparisons in percentage points."""
    return {
        "sets": [s.name for s in view.sets],
        "unit": "top-1 accuracy (%), as published",
        "sources": {
            s.source.key: {**asdict(s.source), "citation": s.source.citation()} for s in view.sets
        },
        "rows": [
            {
                "set": s.name,
                "name": row.name,
                "in_paper": row.in_paper or None,
                "kind": row.kind,
                "note": row.note or None,
                "benchmark": asdict(s.benchmark),
                "top1": {
                    layer: {"value": value, "source": s.source.key}
                    for layer, value in s.percent(row).items()
                },
            }
            for s in view.sets
            for row in s.rows
        ],
        "comparisons": [
            {
                "ours": c.ours,
                "set": c.reference.name,
                "theirs": c.row.name,
                "source": c.reference.source.key,
                "same_benchmark": not c.mismatch,
                "not_the_same_benchmark": list(c.mismatch),
                "stated_differences": list(c.stated),
                "ours_minus_theirs_points": {k: round(v, 4) for k, v in c.delta.items()},
            }
            for c in view.comparisons
        ],
        "not_compared": [
            {"set": s.name, "theirs": row.name, "why": why} for s, row, why in view.not_compared
        ],
    }


STYLES = (("--", "x"), ("-.", "+"), (":", "1"))  # one per set: lines, then markers


def reference_lines(view: ReferenceView, layers: Sequence[str]) -> list[tuple[str, dict, dict]]:
    """(label, {layer: value}, matplotlib style) of each published row at the plot's
    `layers` it has: the dashed lines of accuracy.png, each set in its own line style; a
    row with none of those layers is not drawn."""
    lines = []
    for i, reference in enumerate(view.sets):
        ls, marker = STYLES[i % len(STYLES)]
        for row in reference.rows:
            values = reference.percent(row)
            shown = {layer: values[layer] for layer in layers if layer in values}
            if shown:
                label = f"{row.name} [{view.number(reference)}], {reference.benchmark.label}"
                lines.append((label, shown, {"ls": ls, "marker": marker}))
    return lines
