"""`sslx probe`: flags -> networks + data + ProbeConfig -> one probe per network -> report."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from sslx import seeds
from sslx.errors import InputError
from sslx.probe.heads import parse_layers
from sslx.probe.report import dims_line, write_report
from sslx.probe.run import Network, ProbeConfig, ProbeOptions, ProbeResult, _slug, probe_network
from sslx.train.alexnet import AlexNet, ModelConfig
from sslx.train.checkpoint import load_backbone, resolve_path
from sslx.train.labelled import CIFAR, DATASETS, load_labelled


def _milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--lr-milestones must be comma-separated epochs (got {text!r})") from None


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


def random_network(size: int, sobel: bool, conv1_stride: int, seed: int) -> Network:
    """The paper's "Random" row: AlexNet with DeepCluster's initialisation and no training
    (its BatchNorm layers keep their initial statistics, mean 0 and variance 1)."""
    config = ModelConfig(input_size=size, sobel=sobel, conv1_stride=conv1_stride).resolved()
    torch.manual_seed(seeds.int_seed(seed, "init"))  # as a training run's init
    model = AlexNet(config).eval()
    return Network("random", model, {"random_init": config.to_dict(), "init_seed": seed})


def _unique_names(networks: list[Network]) -> list[Network]:
    seen: dict[str, int] = {}
    unique = []
    for net in networks:
        count = seen.get(net.name, 0)
        seen[net.name] = count + 1
        name = net.name if count == 0 else f"{net.name}-{count + 1}"
        unique.append(Network(name, net.model, net.source))
    return unique


@click.command()
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(path_type=Path),
    help="sslx checkpoint (file or run folder) to probe; repeat to compare several side by side.",
)
@click.option(
    "--random-init",
    is_flag=True,
    help='Also probe an untrained AlexNet (the paper\'s "Random" row), built from '
    "--size, --sobel and --conv1-stride.",
)
@click.option(
    "--size",
    type=int,
    default=None,
    help="[--random-init] input size.  [default: the first checkpoint's, else 224]",
)
@click.option("--sobel/--no-sobel", default=False, help="[--random-init] grey + Sobel input.")
@click.option(
    "--conv1-stride",
    type=int,
    default=0,
    help="[--random-init] conv1 stride; 0 picks 4 (>=128 px), 2 (>=64 px) or 1.",
)
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default="imagefolder",
    help="imagefolder: DIR/<class>/<image>; cifar10/cifar100: torchvision's "
    "files in DIR, or a class-per-folder tree of those classes.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Training images (the dataset root).",
)
@click.option(
    "--val-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Validation images in the same layout; default: a held-out part of "
    "--data-dir (CIFAR pickles: their test split).",
)
@click.option(
    "--val-fraction",
    type=float,
    default=None,
    help="Held-out fraction of each class of --data-dir for validation.  [default: 0.1]",
)
@click.option("--split-seed", type=int, default=0, help="Seed of the held-out split.")
@click.option(
    "--download", is_flag=True, help="Download CIFAR-10/100 into --data-dir first (needs internet)."
)
@click.option(
    "--layers", default="conv1,conv2,conv3,conv4,conv5", help="Comma-separated taps to probe."
)
@click.option("--epochs", type=int, default=36, help="Probe training epochs.")
@click.option("--batch-size", type=int, default=192, help="Images per step.")
@click.option("--lr", type=float, default=0.01, help="Learning rate.")
@click.option("--momentum", type=float, default=0.9, help="SGD momentum.")
@click.option("--weight-decay", type=float, default=1e-5, help="Weight decay.")
@click.option(
    "--lr-milestones",
    default="10,20,30",
    help="Epochs at which the LR is multiplied by --lr-gamma.",
)
@click.option("--lr-gamma", type=float, default=0.1, help="LR decay factor.")
@click.option(
    "--augment/--no-augment",
    default=True,
    help="RandomResizedCrop + flip in training (streaming path only).",
)
@click.option(
    "--crop-scale-min", type=float, default=0.08, help="Smallest RandomResizedCrop area fraction."
)
@click.option(
    "--crop-ratio",
    type=float,
    default=None,
    help="Evaluation: resize the short side to size / ratio, then centre-crop.  "
    "[default: 0.875 for imagefolder, 1.0 for CIFAR]",
)
@click.option(
    "--ten-crop/--single-crop",
    default=None,
    help="Evaluate on ten crops (corners, centre and their mirrors; logits averaged), as "
    "the paper's probe code does, or on one centre crop.  [default: ten crops for "
    "imagefolder; one for CIFAR, whose ten crops would be the image and its mirror]",
)
@click.option(
    "--cache-features",
    is_flag=True,
    help="Extract pooled features once, without augmentation, as float16, and train "
    "the probes on them: much faster on CPU.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="[--cache-features] keep the cache in memory-mapped files here (reused by "
    "a rerun) instead of in memory.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    help="Seed of the probes' init and batch order, and of --random-init.",
)
@click.option(
    "--workers", type=int, default=1, help="Image decoding processes (0: in the main process)."
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    help="Where the network and probes run.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for results.{md,json,csv}, accuracy.png and the resumable probe "
    "states (rerun the same command to resume).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def probe(**flags) -> None:
    """Linear probes on conv1..conv5 of frozen networks (top-1 / top-5 per layer)."""
    layers = parse_layers(flags["layers"])
    networks = _networks(flags)
    data = load_labelled(
        flags["dataset"],
        flags["data_dir"],
        val_dir=flags["val_dir"],
        val_fraction=flags["val_fraction"],
        split_seed=flags["split_seed"],
        download=flags["download"],
    )
    crop_ratio = flags["crop_ratio"]
    if crop_ratio is None:
        crop_ratio = 1.0 if flags["dataset"] in CIFAR else 0.875
    ten_crop = flags["ten_crop"]
    if ten_crop is None:  # at crop ratio 1 the ten crops are 5 copies of the image + mirrors
        ten_crop = flags["dataset"] not in CIFAR
    config = ProbeConfig(
        layers=layers,
        epochs=flags["epochs"],
        batch_size=flags["batch_size"],
        lr=flags["lr"],
        momentum=flags["momentum"],
        weight_decay=flags["weight_decay"],
        lr_milestones=_milestones(flags["lr_milestones"]),
        lr_gamma=flags["lr_gamma"],
        augment=flags["augment"],
        crop_scale_min=flags["crop_scale_min"],
        crop_ratio=crop_ratio,
        ten_crop=ten_crop,
        cache_features=flags["cache_features"],
        seed=flags["seed"],
    )
    device = flags["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    options = ProbeOptions(
        workers=max(0, flags["workers"]),
        device=device,
        cache_dir=flags["cache_dir"],
        progress=not flags["quiet"],
    )
    out: Path = flags["out"]
    (out / "state").mkdir(parents=True, exist_ok=True)
    click.echo(
        f"data: {len(data.train)} train, {len(data.val)} val images, "
        f"{len(data.classes)} classes ({data.info['val']})",
        err=True,
    )
    meta = {"data": data.info, "config": {**vars(config), "layers": list(layers)}}
    results: list[ProbeResult] = []
    for net in networks:
        click.echo(dims_line(net.name, net.model.config.input_size, _dims(net, layers)), err=True)
        state = out / "state" / f"{_slug(net.name)}.pt"
        results.append(probe_network(net, data, config, options, state))
        text = write_report(results, meta, out)
    click.echo(text)
    click.echo(f"wrote {out}/results.md, results.json, results.csv, accuracy.png", err=True)


def _dims(net: Network, layers) -> dict[str, int]:
    from sslx.probe.heads import probe_dims

    return probe_dims(net.model.config, layers)


def _networks(flags: dict) -> list[Network]:
    networks = [checkpoint_network(p) for p in flags["checkpoints"]]
    if flags["random_init"]:
        size = flags["size"] or (networks[0].model.config.input_size if networks else 224)
        networks.append(random_network(size, flags["sobel"], flags["conv1_stride"], flags["seed"]))
    elif flags["size"] is not None:
        raise InputError("--size only applies to --random-init (checkpoints fix their own size)")
    if not networks:
        raise InputError("nothing to probe: give --checkpoint CKPT and/or --random-init")
    return _unique_names(networks)
