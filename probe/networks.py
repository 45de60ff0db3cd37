"""The frozen networks `sslx probe` and `sslx viz` read: sslx checkpoints, or the paper's
untrained "Random" AlexNet."""

from __future__ import annotations

from pathlib import Path

import torch

from sslx import seeds
from sslx.errors import InputError
from sslx.probe.run import Network
from sslx.train.backbone import build_backbone
from sslx.train.checkpoint import load_backbone, resolve_path
from sslx.train.model import ModelConfig


def checkpoint_network(path: Path) -> Network:
    """The frozen AlexNet of an sslx checkpoint; anything else is a one-line InputError."""
    file = resolve_path(path)
    try:
        model, record = load_backbone(file)
    except (RuntimeError, KeyError, TypeError) as e:  # weights that do not fit the record
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{file}: the weights do not match its model record ({first})") from None
    name = file.parent.name if file.name == "checkpoint.pt" else file.stem
    progress = record.get("progress", {})
    source = {
        "checkpoint": str(file.resolve()),
        "method": record.get("method"),
        "global_step": progress.get("global_step"),
        "model": record["model"],
    }
    return Network(name or "checkpoint", model, source)


def random_network(geometry: ModelConfig, seed: int) -> Network:
    """The paper's "Random" row: the backbone with its initialisation and no training
    (its BatchNorm layers keep their initial statistics, mean 0 and variance 1)."""
    config = geometry.resolved()
    torch.manual_seed(seeds.int_seed(seed, "init"))  # as a training run's init
    model = build_backbone(config).eval()
    name = "random" if config.arch == "alexnet" else f"random-{config.arch}"  # the paper's: AlexNet
    return Network(name, model, {"random_init": config.to_dict(), "init_seed": seed})


def unique_names(networks: list[Network]) -> list[Network]:
    """Networks with the same name (two runs called rotnet) get -2, -3, ... appended."""
    seen: dict[str, int] = {}
    unique = []
    for net in networks:
        count = seen.get(net.name, 0)
        seen[net.name] = count + 1
        name = net.name if count == 0 else f"{net.name}-{count + 1}"
        unique.append(Network(name, net.model, net.source))
    return unique
