"""Pretext curves beside the ablation table: did each network learn its own task?

A probe result names its checkpoint; the run folder beside it holds the training's
`metrics.jsonl` (docs/checkpoints.md, "The run folder"). Each method logs its pretext
measure (its spec's `pretext`: the metric's name and chance level) in every training
record; this reads it per epoch, so a row that probes like random can be told apart from
a run that never learned (a curve at chance) or one whose task was solved at once (a
curve at 1). Reading is JSON only. A moved run leaves the network without a curve; a
run whose records lack its method's measure is named in a warning, never skipped
silently.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sslx.atomic import write_png_atomic
from sslx.train.methods import SPECS


@dataclass(frozen=True)
class Curve:
    metric: str
    chance: float | None
    points: tuple[tuple[float, float], ...]  # (epochs done, value), one per logged step
    epoch_means: tuple[float, ...]  # the mean value of each epoch, in order


def metrics_records(path: Path) -> list[dict]:
    """The records of a run's metrics.jsonl that carry an integer step (none if missing)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # a run killed mid-write: a cut line
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def read_curve(checkpoint: Path | None, method: str | None) -> Curve | None:
    """The pretext curve of the run that wrote `checkpoint`, or None where it cannot be read
    (a moved run, a method without a known measure)."""
    if checkpoint is None or method not in SPECS:
        return None
    path = checkpoint.parent / "metrics.jsonl"
    return curve_of(metrics_records(path), method, path)


def curve_of(records: list[dict], method: str | None, path: Path) -> Curve | None:
    """The pretext curve in a run's `records` (read from `path`, named in the warning)."""
    if method not in SPECS:
        return None
    metric, chance = SPECS[method].pretext.metric, SPECS[method].pretext.chance
    steps, values, epochs, epoch_ends, steps_seen = [], [], [], {}, 0
    for record in records:
        steps_seen += record.get("event") is None  # a training record (not an epoch's end)
        if record.get("event") == "epoch_end" and isinstance(record.get("epoch"), int):
            epoch_ends.setdefault(record["epoch"], record["step"])
        value, epoch = record.get(metric), record.get("epoch")
        if isinstance(value, (int, float)) and isinstance(epoch, int):
            steps.append(record["step"])
            values.append(float(value))
            epochs.append(epoch)
    if not values:
        if steps_seen:
            print(
                f"sslx: warning: {path} has training records but no {metric!r}, the "
                f"pretext measure of {method}; no curve for it",
                file=sys.stderr,
            )
        return None
    per_epoch = epoch_ends.get(1) or max(steps)  # steps of one epoch, for the x axis
    by_epoch: dict[int, list[float]] = {}
    for value, epoch in zip(values, epochs, strict=True):
        by_epoch.setdefault(epoch, []).append(value)
    means = [sum(v) / len(v) for _, v in sorted(by_epoch.items())]
    points = tuple((s / per_epoch, v) for s, v in zip(steps, values, strict=True))
    return Curve(metric, chance, points, tuple(means))


def plot_curves(curves: list[tuple[str, Curve]], path: Path) -> None:
    """One line per network, given as (its row, its curve); a row's networks share a colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    keys = list(dict.fromkeys(key for key, _ in curves))
    colours = plt.get_cmap("tab10")
    shown: set[str] = set()
    for key, curve in curves:
        xs, ys = zip(*curve.points, strict=True)
        ax.plot(
            xs,
            ys,
            color=colours(keys.index(key) % 10),
            lw=1,
            label=key if key not in shown else None,
        )
        shown.add(key)
    chances = {c.chance for _, c in curves if c.chance is not None}
    for chance in chances:
        ax.axhline(chance, color="grey", ls=":", lw=1)
    metrics = sorted({c.metric for _, c in curves})
    ax.set_xlabel("epoch")
    ax.set_ylabel(" / ".join(metrics))
    ax.set_title("pretext curves (dotted: chance)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    write_png_atomic(path, fig)
    plt.close(fig)
