"""The probe protocol: linear probes on every tap of a frozen network, trained jointly.

All probes see the same batches and train on the sum of their cross-entropy losses with
one SGD optimiser (momentum 0.9, weight decay 1e-5, batch 192, 36 epochs, lr 0.01 ÷10 at
epochs 10, 20 and 30), as in the paper's released code. Features come either streamed
(augmented with RandomResizedCrop + flip) or from a float16 cache extracted once without
augmentation (`cache_features`). The probes are saved after every epoch, so a rerun of an
interrupted probe continues where it stopped. The cached features of a network
(`features.NetworkCaches`) are extracted once per run and shared with kNN and k-means
(`sslx.probe.evaluate`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sslx import seeds
from sslx import settings as declarations
from sslx.atomic import save_torch_atomic
from sslx.common.batching import in_order
from sslx.common.device import default_workers, pick_device
from sslx.common.labelled import LabelledSplit
from sslx.common.timing import StepTimer
from sslx.errors import InputError, first_line
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.data import Transformed, eval_transform, train_transform
from sslx.probe.features import (
    Batch,
    FrozenTrunk,
    NetworkCaches,
    epoch_batches,
    stream_batches,
)
from sslx.probe.heads import LinearProbes
from sslx.settings import FREE
from sslx.train.backbone import Backbone


@dataclass(frozen=True)
class Network:
    """A frozen network to probe, and where it came from (part of the resume fingerprint)."""

    name: str
    model: Backbone
    source: dict


@dataclass
class ProbeResult:
    name: str
    input_size: int
    dims: dict[str, int]
    top1: dict[str, float]
    top5: dict[str, float]
    train_loss: dict[str, list[float]]  # mean loss of each probe, per epoch
    seconds: dict[str, float] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    # --eval knn / cluster, per layer (`sslx.probe.evaluate`); the linear fields stay
    # empty when no probe is trained.
    knn: dict[str, dict] = field(default_factory=dict)
    cluster: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The fields, without the evaluations that were not run."""
        return {k: v for k, v in asdict(self).items() if v or k not in ("knn", "cluster")}


def make_optimizer(probes: LinearProbes, config: ProbeConfig):
    optimizer = torch.optim.SGD(
        probes.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.lr_milestones), gamma=config.lr_gamma
    )
    return optimizer, schedule


def train_probes(
    probes: LinearProbes,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    batches_of_epoch: Callable[[int], Iterable[Batch]],
    epochs: range,
    history: dict[str, list[float]],
    on_epoch_end: Callable[[int], None] | None = None,
    progress: bool = True,
    steps_per_epoch: int | None = None,
) -> dict[str, list[float]]:
    """Joint training on the sum of the probes' losses; appends each probe's mean loss per
    epoch to `history`. The features carry no gradient, so only the linear layers learn.

    One progress bar over all steps (no nested bars); after the first few steps of the
    first epoch, a line projects the time of the whole protocol."""
    total = steps_per_epoch * len(epochs) if steps_per_epoch else None
    bar = tqdm(total=total, desc="probe", unit="step", disable=not progress, dynamic_ncols=True)
    timer = StepTimer(steps_per_epoch, total, "probe's epochs") if total else None
    for epoch in epochs:
        probes.train()
        totals, seen = dict.fromkeys(probes.layers, 0.0), 0
        bar.set_description(f"probe epoch {epoch + 1}/{epochs.stop}")
        for features, labels in batches_of_epoch(epoch):
            losses = {n: F.cross_entropy(z, labels) for n, z in probes(features).items()}
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
            for n, loss in losses.items():
                totals[n] += loss.item() * len(labels)
            seen += len(labels)
            bar.update(1)
            if timer is not None and (line := timer.tick()):
                tqdm.write(line, file=sys.stderr)
        schedule.step()
        for n in probes.layers:
            history[n].append(totals[n] / max(seen, 1))
        bar.set_postfix({n: f"{history[n][-1]:.3f}" for n in probes.layers})
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()
    return history


@torch.no_grad()
def evaluate(
    probes: LinearProbes, batches: Iterable[Batch], crops: int = 1
) -> tuple[dict[str, float], dict[str, float]]:
    """Top-1 and top-5 accuracy of each probe; with crops > 1 the logits are averaged over
    the crops (yukimasano/linear-probes eval_linear_probes.py averages the raw outputs)."""
    probes.eval()
    top1 = dict.fromkeys(probes.layers, 0)
    top5 = dict.fromkeys(probes.layers, 0)
    total = 0
    for features, labels in batches:
        for n, logits in probes(features).items():
            mean = logits.view(len(labels), crops, -1).mean(1)
            best = mean.topk(min(5, mean.shape[1]), dim=1).indices
            top1[n] += (best[:, 0] == labels).sum().item()
            top5[n] += (best == labels[:, None]).any(1).sum().item()
        total += len(labels)
    return (
        {n: top1[n] / total for n in probes.layers},
        {n: top5[n] / total for n in probes.layers},
    )


def fingerprint(network: Network, data: LabelledSplit, config: ProbeConfig) -> str:
    """What a saved probe state must match to be resumed: every setting but those declared
    free to change on a rerun (the epoch count, which evaluations run)."""
    free = {k for k, d in declarations.declared(ProbeConfig).items() if d.setting.resume == FREE}
    settings = {k: v for k, v in asdict(config).items() if k not in free}
    record = {"network": network.source, "data": data.info, "config": settings}
    return json.dumps(record, sort_keys=True, default=str)


def load_state(path: Path | None, key: str) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file raises many types
        raise InputError(
            f"{path} is not a readable probe state ({type(e).__name__}); "
            "delete it to start that probe over"
        ) from None
    shape = {"epoch": int, "probes": dict, "optimizer": dict, "scheduler": dict, "history": dict}
    damaged = not isinstance(state, dict) or any(
        not isinstance(state.get(k), kind) or isinstance(state.get(k), bool)
        for k, kind in shape.items()
    )
    if damaged or state["epoch"] < 0 or not isinstance(state.get("result"), (dict, type(None))):
        raise InputError(f"{path} is a damaged probe state; delete it to start that probe over")
    if state.get("fingerprint") != key:
        raise InputError(
            f"{path} is a probe of another network, dataset or setting; "
            "use another --out, or delete it to start over"
        )
    return state


def resolved(options: ProbeOptions) -> tuple[ProbeOptions, torch.device]:
    """`options` with the device and the worker count chosen, and that device."""
    device = pick_device(options.device)
    options = replace(options, device=device.type)
    if options.workers is None:
        options = replace(options, workers=default_workers(device, 1))
    return options, device


def _feature_source(trunk, data, config, options, caches: NetworkCaches):
    """(train batches of an epoch, validation batches, extraction seconds) for either path."""
    device = torch.device(options.device)
    size = caches.network.model.config.input_size
    plain = eval_transform(size, config.crop_ratio)
    val_set = Transformed(data.val, eval_transform(size, config.crop_ratio, config.ten_crop))
    n_train = len(data.train)

    def order(epoch: int) -> list[list[int]]:
        return epoch_batches(n_train, config.batch_size, config.seed, epoch)

    if config.cache_features:
        before = caches.seconds
        train, val = caches.get(trunk, ("train", "val"), "--cache-features")
        seconds = caches.seconds - before

        def train_batches(epoch: int) -> Iterable[Batch]:
            return train.batches(order(epoch), device)

        def val_batches() -> Iterable[Batch]:
            return val.batches(in_order(len(val), config.batch_size), device)

        return train_batches, val_batches, seconds

    augmented = train_transform(size, config.crop_scale_min) if config.augment else plain
    train_set = Transformed(data.train, augmented)

    def train_batches(epoch: int) -> Iterable[Batch]:
        # The same crops on a resumed run.
        torch.manual_seed(seeds.int_seed(config.seed, "probe", epoch, 1))
        return stream_batches(trunk, train_set, order(epoch), options.workers, device)

    def val_batches() -> Iterable[Batch]:
        order = in_order(len(val_set), config.batch_size)
        return stream_batches(trunk, val_set, order, options.workers, device)

    return train_batches, val_batches, 0.0


def probe_network(
    network: Network,
    data: LabelledSplit,
    config: ProbeConfig,
    options: ProbeOptions | None = None,
    state_path: Path | None = None,
    caches: NetworkCaches | None = None,
) -> ProbeResult:
    """Train and evaluate linear probes on the taps `config.layers_of` gives for a frozen network.

    With `state_path` the probes are saved there after every epoch and the result at the
    end; a rerun continues from the last saved epoch (or returns the stored result).
    `caches` are the network's feature caches when kNN or k-means share them."""
    key = fingerprint(network, data, config)
    state = load_state(state_path, key)
    if state is not None and state["epoch"] > config.epochs:
        raise InputError(f"{state_path} already has {state['epoch']} epochs; --epochs is lower")
    if state is not None and state["epoch"] == config.epochs and state["result"] is not None:
        return ProbeResult(**state["result"])

    options, device = resolved(options or ProbeOptions())
    if caches is None:
        cache_dir = options.cache_dir / _slug(network.name) if options.cache_dir else None
        caches = NetworkCaches(network, data, config, options, cache_dir)
    trunk = FrozenTrunk(network.model, config.layers_of(network.model.config)).to(device)
    train_batches, val_batches, extract_s = _feature_source(trunk, data, config, options, caches)
    torch.manual_seed(seeds.int_seed(config.seed, "probe"))
    probes = LinearProbes(trunk.shapes, len(data.classes)).to(device)
    optimizer, schedule = make_optimizer(probes, config)
    history: dict[str, list[float]] = {n: [] for n in probes.layers}
    start = 0
    if state is not None:
        try:
            probes.load_state_dict(state["probes"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["scheduler"])
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            raise InputError(
                f"{state_path} does not fit these probes ({first_line(e)}); delete it to "
                "start that probe over"
            ) from None
        history, start = state["history"], state["epoch"]
        print(
            f"sslx: resuming {network.name}'s probes: {start} of {config.epochs} epochs done "
            f"({state_path})",
            file=sys.stderr,
        )

    def save(epoch: int, result: ProbeResult | None = None) -> None:
        if state_path is not None:
            save_torch_atomic(
                {
                    "fingerprint": key,
                    "epoch": epoch + 1,
                    "probes": probes.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "history": history,
                    "result": result and result.to_dict(),
                },
                state_path,
            )

    crops = 10 if config.ten_crop else 1
    t1 = time.perf_counter()
    steps = len(epoch_batches(len(data.train), config.batch_size, config.seed, 0))
    train_probes(
        probes,
        optimizer,
        schedule,
        train_batches,
        range(start, config.epochs),
        history,
        save,
        options.progress,
        steps,
    )
    t2 = time.perf_counter()
    top1, top5 = evaluate(probes, val_batches(), crops)
    seconds = {"extract": extract_s, "train": t2 - t1, "evaluate": time.perf_counter() - t2}
    result = ProbeResult(
        network.name,
        network.model.config.input_size,
        dict(trunk.dims),
        top1,
        top5,
        history,
        seconds,
        network.source,
    )
    save(config.epochs - 1, result)
    return result


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "net"
