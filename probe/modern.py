"""`sslx viz modern`: the paper's question asked of the multi-view methods (docs/modern.md).

Each probed network is placed in a row by its name (its run folder's name):

- `supervised[-<arch>][-seed<k>]` and `random[-<arch>][-seed<k>]`: the references;
- `<method>[-<arch>]-<preset>-seed<k>`: a pretraining (`sslx train --method`) on one
  image's `<preset>` patches.

`<arch>` is a `--arch` choice; without it the network is the arch the probe recorded for
it, or AlexNet, as in the ablation's names (`rotnet-all-seed0`), so the ablation's probe
folders can sit in the same table.
There is one table per architecture, at its probe layers (AlexNet conv1..conv4, the
ablation's; ResNet-18 its stem and four stages). Beside the table, each network's
collapse measures and pretext curve, per epoch, from its run's metrics.jsonl. Names that
fit no rule, two networks for one (row, seed), missing layers, or folders probed with
different settings are refused (InputError). Torch-free; matplotlib only for the plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sslx.atomic import write_json_atomic, write_text_atomic
from sslx.errors import InputError
from sslx.probe.ablation import LAYERS as CONV_LAYERS
from sslx.probe.ablation import PRESETS, SEED
from sslx.probe.modern_plot import plot_modern
from sslx.probe.pretext import Curve, curve_of, metrics_records
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
from sslx.train.methods import SPECS
from sslx.train.model import ARCHS, RESNET_LAYERS

TABLE_LAYERS = {"alexnet": CONV_LAYERS, "resnet18": RESNET_LAYERS}
ARCH_LABELS = {"alexnet": "AlexNet", "resnet18": "ResNet-18"}
REFERENCES = ("supervised", "random")
METHOD_LABELS = {
    "rotnet": "RotNet",
    "deepcluster": "DeepCluster",
    "bigan": "BiGAN",
    "simclr": "SimCLR",
    "byol": "BYOL",
    "simsiam": "SimSiam",
    "dino": "DINO",
}
PRESET_ORDER = ("all", "none", *(p for p in PRESETS if p not in ("all", "none")))
COLLAPSE = ("embedding_std", "embedding_rank", "teacher_entropy")  # epoch means, if logged
NAMING = (
    "supervised[-<arch>][-seed<k>], random[-<arch>][-seed<k>] or "
    "<method>[-<arch>]-<preset>-seed<k>, with <method> an sslx method, <arch> one of "
    + ", ".join(ARCHS)
    + " and <preset> one of "
    + ", ".join(PRESETS)
)


@dataclass(frozen=True, order=True)
class RowKey:
    arch: str
    method: str  # "supervised" or "random" for the references
    preset: str | None = None

    @property
    def label(self) -> str:
        if self.preset is None:
            return self.method
        return f"{METHOD_LABELS.get(self.method, self.method)}, {self.preset}"

    @property
    def order(self) -> tuple:
        known = list(METHOD_LABELS)
        rank = (
            REFERENCES.index(self.method)
            if self.preset is None
            else 2 + (known.index(self.method) if self.method in known else len(known))
        )
        preset = PRESET_ORDER.index(self.preset) if self.preset else -1
        return (list(ARCHS).index(self.arch), rank, self.method, preset)


@dataclass(frozen=True)
class ProbedNetwork:
    key: RowKey
    seed: int | None
    name: str
    source: Path
    top1: dict[str, float]  # percent, at the arch's table layers
    dims: tuple
    curve: Curve | None
    epochs: tuple[dict, ...]  # the run's epoch_end records: the collapse measures


@dataclass
class TableRow(OverSeeds):
    key: RowKey
    networks: list[ProbedNetwork] = field(default_factory=list)


def place_network(
    name: str, source: Path, recorded: str | None = None
) -> tuple[RowKey, int | None]:
    """(row, seed) of a network name, or InputError naming the rule. `recorded` is the
    arch the probe recorded for the network, if any: a name without an arch takes it, a
    name with another arch is refused."""
    match = SEED.match(name)
    stem, seed = (match["stem"], int(match["seed"])) if match else (name, None)
    parts, found = stem.split("-"), None
    if parts[0] in REFERENCES and len(parts) <= 2:
        arch = parts[1] if len(parts) == 2 else None
        if arch is None or arch in ARCHS:
            found = parts[0], arch, None
    elif len(parts) >= 2 and parts[-1] in PRESETS and seed is not None:
        arch, method = None, parts[:-1]
        if len(method) >= 2 and method[-1] in ARCHS:
            arch, method = method[-1], method[:-1]
        if "-".join(method) in SPECS:
            found = "-".join(method), arch, parts[-1]
    if found is None:
        raise InputError(f"{source}: cannot place network {name!r} in the table; name it {NAMING}")
    method, arch, preset = found
    if arch is not None and recorded is not None and arch != recorded:
        raise InputError(f"{source}: network {name!r} is named {arch} but is an {recorded}")
    return RowKey(arch or recorded or "alexnet", method, preset), seed


def recorded_arch(entry: dict) -> str | None:
    """The arch `sslx probe` recorded for a network: its checkpoint's or --random-init's."""
    source = entry.get("source") if isinstance(entry.get("source"), dict) else {}
    for part in ("model", "random_init"):
        arch = source.get(part, {}).get("arch") if isinstance(source.get(part), dict) else None
        if arch in ARCHS:
            return arch
    return None


def run_folder(checkpoint: Path | None, probe_dir: Path) -> Path:
    """Where the network's metrics.jsonl is: beside its checkpoint, or, for a run that was
    moved or a table kept in docs/, in the probe folder itself."""
    if checkpoint is not None and (checkpoint.parent / "metrics.jsonl").is_file():
        return checkpoint.parent
    return probe_dir


def epoch_records(records: list[dict]) -> tuple[dict, ...]:
    """Each epoch's collapse measures from a run's metrics.jsonl records: the epoch_end
    record's means, and the mean of the training records for those only logged per step
    (DINO's teacher entropy). Empty if there are none."""
    ends: dict[int, dict] = {}
    steps: dict[int, dict[str, list[float]]] = {}
    for record in records:
        if not isinstance(record.get("epoch"), int):
            continue
        values = {k: record[k] for k in COLLAPSE if isinstance(record.get(k), (int, float))}
        if record.get("event") == "epoch_end":
            ends[record["epoch"]] = values  # a resumed epoch: its last record counts
        elif record.get("event") is None:
            for k, v in values.items():
                steps.setdefault(record["epoch"], {}).setdefault(k, []).append(float(v))
    epochs = []
    for epoch in sorted(ends):
        means = {k: sum(v) / len(v) for k, v in steps.get(epoch, {}).items()}
        merged = {**means, **ends[epoch]}
        if merged:
            epochs.append({k: merged[k] for k in COLLAPSE if k in merged})
    return tuple(epochs)


def _read_probe_dir(folder: Path) -> tuple[dict, list[ProbedNetwork]]:
    settings, entries, path = load_results(folder)
    networks = []
    for entry in entries:
        key, seed = place_network(entry["name"], folder, recorded_arch(entry))
        layers = TABLE_LAYERS[key.arch]
        top1 = top1_percent(entry, layers, folder, path)
        metrics = run_folder(checkpoint_of(entry), folder) / "metrics.jsonl"
        records = metrics_records(metrics)  # read once for the curve and the collapse
        method = None if key.method == "random" else key.method
        curve, epochs = curve_of(records, method, metrics), epoch_records(records)
        networks.append(
            ProbedNetwork(
                key, seed, entry["name"], folder, top1, recorded_dims(entry, layers), curve, epochs
            )
        )
    return settings, networks


def collect_rows(folders: list[Path]) -> list[TableRow]:
    """Read every folder, check the networks make one table, group them in table order."""
    rows: dict[RowKey, TableRow] = {}
    for _, (_, networks) in same_settings(folders, _read_probe_dir):
        for net in networks:
            row = rows.setdefault(net.key, TableRow(net.key))
            other = next((n for n in row.networks if n.seed == net.seed), None)
            if other is not None:
                raise InputError(
                    f"two networks for row {net.key.label} ({net.key.arch}) seed {net.seed}: "
                    f"{other.name} in {other.source} and {net.name} in {net.source}"
                )
            row.networks.append(net)
    for arch in ARCHS:
        nets = [n for key, row in rows.items() if key.arch == arch for n in row.networks]
        if nets:
            check_same_dims(nets, f"{arch} networks")
    return [rows[key] for key in sorted(rows, key=lambda k: k.order)]


def _cell(row: TableRow, layer: str) -> str:
    if len(row.networks) < 2:
        return f"{row.mean(layer):.1f}"
    return f"{row.mean(layer):.1f} ± {row.spread(layer):.1f}"


def _markdown(rows: list[TableRow], folders: list[Path]) -> str:
    lines = [
        "# One image, modern methods: linear probes",
        "",
        f"Linear-probe top-1 (%) from {len(folders)} probe folder(s). Each cell: the mean "
        "over the row's networks (seeds) ± half their range, (max − min) / 2; no spread "
        "where n = 1. Then each trained row minus random, and each network's collapse "
        "measures and pretext curve from its run's metrics.jsonl.",
    ]
    for arch in ARCHS:
        table = [r for r in rows if r.key.arch == arch]
        if not table:
            continue
        layers = TABLE_LAYERS[arch]
        lines += ["", f"## {ARCH_LABELS[arch]}", "", "| row | n | " + " | ".join(layers) + " |"]
        lines.append("| --- | ---: | " + " | ".join("---:" for _ in layers) + " |")
        for r in table:
            cells = " | ".join(_cell(r, layer) for layer in layers)
            lines.append(f"| {r.key.label} | {len(r.networks)} | {cells} |")
        random = next((r for r in table if r.key.method == "random"), None)
        trained = [r for r in table if r.key.preset is not None]
        if random is not None and trained:
            lines += [
                "",
                f"Minus random ({ARCH_LABELS[arch]}), in points; `*` where the row has "
                "n ≥ 2 and the gap is larger than its spread:",
            ]
            lines += ["", "| row | " + " | ".join(layers) + " |"]
            lines.append("| --- | " + " | ".join("---:" for _ in layers) + " |")
            for r in trained:
                gaps = [(r.mean(x) - random.mean(x), r.spread(x)) for x in layers]
                many = len(r.networks) > 1
                cells = " | ".join(f"{g:+.1f}{'*' if many and abs(g) > s else ''}" for g, s in gaps)
                lines.append(f"| {r.key.label} | {cells} |")
    lines += _collapse_lines(rows)
    return "\n".join(lines) + "\n"


def _per_epoch(values: list[float], digits: int) -> str:
    return " → ".join(f"{v:.{digits}f}" for v in values) if values else ""


def _collapse_lines(rows: list[TableRow]) -> list[str]:
    nets = [n for r in rows for n in r.networks if n.epochs or n.curve]
    if not nets:
        return []
    lines = [
        "",
        "## Collapse and pretext, per network",
        "",
        "Epoch means. `embedding_std`: per-dimension std of the normalised embedding × √d "
        "(0: collapsed to a point); `embedding_rank`: its effective rank; "
        "`teacher_entropy`: DINO's teacher output (near 0 or near log K: collapsed).",
        "",
        "| network | embedding_std | embedding_rank | teacher_entropy | pretext measure |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in nets:
        std, rank, entropy = ([e[k] for e in n.epochs if k in e] for k in COLLAPSE)
        pretext = f"{n.curve.metric}: {_per_epoch(list(n.curve.epoch_means), 3)}" if n.curve else ""
        lines.append(
            f"| {n.name} | {_per_epoch(std, 3)} | {_per_epoch(rank, 1)} "
            f"| {_per_epoch(entropy, 2)} | {pretext} |"
        )
    return lines


def _to_json(rows: list[TableRow], folders: list[Path]) -> dict:
    return {
        "probe_dirs": [str(folder) for folder in folders],
        "rows": [
            {
                "arch": r.key.arch,
                "method": r.key.method,
                "preset": r.key.preset,
                "n": len(r.networks),
                "networks": [
                    {
                        "name": n.name,
                        "seed": n.seed,
                        "probe_dir": str(n.source),
                        "epochs": list(n.epochs),
                        "pretext": curve_json(n.curve),
                    }
                    for n in r.networks
                ],
                "top1": r.cells(TABLE_LAYERS[r.key.arch]),
            }
            for r in rows
        ],
    }


def write_modern(folders: list[Path], out: Path) -> str:
    """Read, check, then write modern.{md,json,png} into `out`; return the markdown."""
    rows = collect_rows(folders)  # every check before the first write
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    text = _markdown(rows, folders)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "modern.md", text)
    write_json_atomic(out / "modern.json", _to_json(rows, folders), indent=2)
    plot_modern(rows, TABLE_LAYERS, ARCH_LABELS, out / "modern.png")
    return text
