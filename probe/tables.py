"""Reading `sslx probe` folders for the tables (`sslx viz ablation`, `sslx viz modern`).

A folder's results.json holds the probe's settings and one entry per network. A table
compares only networks probed with the same data split and protocol, so every reader here
refuses (InputError) what would silently mix them. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sslx.errors import InputError
from sslx.probe.pretext import Curve


def load_results(folder: Path) -> tuple[dict, list[dict], Path]:
    """(settings, entries, path) of a probe folder. The settings are the data and the
    protocol, without the data's path, the layers or the evaluations run, which may differ
    between the folders of one table; each entry is a dict with a `name`."""
    path = folder / "results.json"
    if not path.is_file():
        raise InputError(f"{folder}: no results.json (not an sslx probe --out folder?)")
    try:
        payload = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or not results:
        raise InputError(f"{path}: not an sslx probe results.json (no 'results' list)")
    for entry in results:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(f"{path}: not an sslx probe results.json (a result without a name)")
    settings = {}
    # Which evaluations ran (--eval) does not change the linear probes' numbers.
    for part, skip in (("data", ("data_dir",)), ("config", ("layers", "evals"))):
        if isinstance(payload.get(part), dict):
            settings.update({k: v for k, v in payload[part].items() if k not in skip})
    return settings, results, path


def top1_percent(entry: dict, layers: tuple[str, ...], folder: Path, path: Path) -> dict:
    """The entry's top-1 at each of `layers`, in percent; InputError if one is missing or
    not a fraction."""
    top1 = entry.get("top1") if isinstance(entry.get("top1"), dict) else {}
    for layer in layers:
        if layer not in top1:
            raise InputError(
                f"{folder}: network {entry['name']!r} has no {layer} probe "
                f"(probe with --layers {','.join(layers)})"
            )
        value = top1[layer]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(f"{path}: {entry['name']} {layer} top-1 is not in [0, 1]")
    return {layer: 100 * float(top1[layer]) for layer in layers}


def recorded_dims(entry: dict, layers: tuple[str, ...]) -> tuple:
    """The entry's probe dimensions at `layers` (None where not recorded)."""
    dims = entry.get("dims") if isinstance(entry.get("dims"), dict) else {}
    return tuple(d if isinstance(d := dims.get(layer), int) else None for layer in layers)


def check_same_dims(networks: list, which: str = "networks") -> None:
    """InputError unless every network (with `name` and `dims`) was probed at the same
    dimensions: another input size or conv1 stride, so the rows would not compare."""
    first = networks[0]
    odd = next((net for net in networks if net.dims != first.dims), None)
    if odd is not None:
        raise InputError(
            f"the {which} were probed at different dimensions ({first.name}: {first.dims}, "
            f"{odd.name}: {odd.dims}); the rows would not compare"
        )


def checkpoint_of(entry: dict) -> Path | None:
    """The checkpoint the entry's network came from (its run folder holds metrics.jsonl)."""
    source = entry.get("source") if isinstance(entry.get("source"), dict) else {}
    return Path(source["checkpoint"]) if isinstance(source.get("checkpoint"), str) else None


def same_settings(
    folders: list[Path], read: Callable[[Path], tuple[dict, Any]]
) -> list[tuple[Path, tuple[dict, Any]]]:
    """`read(folder)` of every folder, or InputError naming the first setting on which a
    folder differs from the first one: another split or probe protocol is not one table."""
    read_all = [(folder, read(folder)) for folder in folders]
    first_folder, (first, _) = read_all[0]
    for folder, (settings, _) in read_all[1:]:
        if settings != first:
            key = next(
                k for k in sorted(settings.keys() | first.keys()) if settings.get(k) != first.get(k)
            )
            raise InputError(
                f"{folder} and {first_folder} were probed with different settings "
                f"({key}: {settings.get(key)!r} vs {first.get(key)!r})"
            )
    return read_all


class OverSeeds:
    """A table row's cells over its networks (seeds): each network has `top1` by layer."""

    networks: list

    def values(self, layer: str) -> list[float]:
        return [net.top1[layer] for net in self.networks]

    def mean(self, layer: str) -> float:
        values = self.values(layer)
        return sum(values) / len(values)

    def spread(self, layer: str) -> float:
        """Half the range over seeds: the paper's tables give no error bars to match."""
        values = self.values(layer)
        return (max(values) - min(values)) / 2

    def cells(self, layers: tuple[str, ...]) -> dict[str, dict]:
        """The row's cells as JSON: mean, spread and each network's value, per layer."""
        return {
            layer: {
                "mean": self.mean(layer),
                "spread": self.spread(layer),
                "values": self.values(layer),
            }
            for layer in layers
        }


def curve_json(curve: Curve | None) -> dict | None:
    return curve and {"metric": curve.metric, "epoch_means": list(curve.epoch_means)}
