"""Pretext curves beside the ablation table: did each network learn its own task?

A probe result names its checkpoint; the run folder beside it holds the training's
`metrics.jsonl` (docs/checkpoint.md). Each method logs one pretext measure per logged step;
this reads it per epoch, so a row that probes like random can be told apart from a run
that never learned (a curve at chance) or one whose task was solved at once (a curve at 1).
Reading is JSON only; a missing file or metric leaves the network without a curve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sslx.atomic import write_png_atomic

# The measure each method logs on its own task, with its chance level.
PRETEXT = {
    "rotnet": ("rotation_accuracy", 0.25),
    "deepcluster": ("cluster_accuracy", None),
    "bigan": ("d_accuracy_real", 0.5),
    "supervised": ("accuracy", 0.1),  # CIFAR-10's chance
}


@dataclass(frozen=True)
class Curve:
    metric: str
    chance: float | None
    points: tuple[tuple[float, float], ...]  # (epochs done, value), one per logged step
    epoch_means: tuple[float, ...]  # the mean value of each epoch, in order


def read_curve(checkpoint: Path | None, method: str | None) -> Curve | None:
    """The pretext curve of the run that wrote `checkpoint`, or None where it cannot be read
    (a moved run, a method without a known measure)."""
    if checkpoint is None or method not in PRETEXT:
        return None
    metric, chance = PRETEXT[method]
    path = checkpoint.parent / "metrics.jsonl"
    if not path.is_file():
        return None
    steps, values, epochs, epoch_ends = [], [], [], {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a run killed mid-write leaves a cut last line
            continue
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            continue
        if record.get("event") == "epoch_end" and isinstance(record.get("epoch"), int):
            epoch_ends.setdefault(record["epoch"], record["step"])
        value, epoch = record.get(metric), record.get("epoch")
        if isinstance(value, (int, float)) and isinstance(epoch, int):
            steps.append(record["step"])
            values.append(float(value))
            epochs.append(epoch)
    if not values:
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
        ax.plot(xs, ys, color=colours(keys.index(key) % 10), lw=1,
                label=key if key not in shown else None)  # fmt: skip
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
