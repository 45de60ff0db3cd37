"""`sslx probe` (flags -> networks + data + ProbeConfig -> one probe per network -> report)
and `sslx viz`.

Torch-free at import, so their --help is fast; torch comes with the modules the
commands import when they run.
"""

from __future__ import annotations

from pathlib import Path

import click

from sslx.errors import InputError, check_out_apart, check_range
from sslx.options import (
    device_option,
    out_option,
    parse_milestones,
    quiet_option,
    seed_option,
    workers_option,
)
from sslx.train.datasets import DATASETS, eval_crop_ratio

MAX_ZOOM = 64  # 96 filters of 13 px at 64x: a ~10k px wide grid, already more than a screen


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
@seed_option("Seed of the probes' init and batch order, and of --random-init.")
@workers_option(
    "Image decoding processes (0: in the main process).  [default: 1 on CPU, all cores but "
    "one on a GPU]",
    default=None,
    show_default=False,
)
@device_option("Where the network and probes run.")
@out_option(
    "Folder for results.{md,json,csv}, accuracy.png and the resumable probe "
    "states (rerun the same command to resume).",
    required=True,
)
@quiet_option("No progress bars.")
def probe(**flags) -> None:
    """Linear probes on conv1..conv5 of frozen networks (top-1 / top-5 per layer)."""
    from sslx import seeds

    seeds.check_seed(flags["seed"])
    seeds.check_seed(flags["split_seed"], "--split-seed")
    if flags["workers"] is not None:
        check_range(flags["workers"], "--workers", 0)
    inputs = [("--data-dir", flags["data_dir"]), ("--val-dir", flags["val_dir"])]
    check_out_apart(flags["out"], inputs)

    import torch

    from sslx.probe.heads import parse_layers
    from sslx.probe.report import dims_line, write_report
    from sslx.probe.run import ProbeConfig, ProbeOptions, ProbeResult, _slug, probe_network
    from sslx.train.labelled import CIFAR, load_labelled

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
    if len(data.classes) < 2:  # one class: every probe scores 100%, a meaningless number
        raise InputError(f"{flags['data_dir']} has {len(data.classes)} class(es); a probe needs 2+")
    crop_ratio = flags["crop_ratio"]
    if crop_ratio is None:
        crop_ratio = eval_crop_ratio(flags["dataset"])
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
        lr_milestones=parse_milestones(flags["lr_milestones"]),
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
        workers=None if flags["workers"] is None else max(0, flags["workers"]),
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


def _dims(net, layers) -> dict[str, int]:
    from sslx.probe.heads import probe_dims

    return probe_dims(net.model.config, layers)


def _networks(flags: dict) -> list:
    from sslx.probe.networks import checkpoint_network, random_network, unique_names

    networks = [checkpoint_network(p) for p in flags["checkpoints"]]
    if flags["random_init"]:
        size = flags["size"] or (networks[0].model.config.input_size if networks else 224)
        networks.append(random_network(size, flags["sobel"], flags["conv1_stride"], flags["seed"]))
    elif flags["size"] is not None:
        raise InputError("--size only applies to --random-init (checkpoints fix their own size)")
    if not networks:
        raise InputError("nothing to probe: give --checkpoint CKPT and/or --random-init")
    return unique_names(networks)


@click.group()
def viz() -> None:
    """Pictures of trained networks, and the ablation table from probe results."""


@viz.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@out_option("PNG file to write.", default=Path("filters.png"))
@click.option("--columns", type=int, default=12, help="Filters per row.")
@click.option("--zoom", type=int, default=4, help="Pixels per filter weight.")
def filters(checkpoint: Path, out: Path, columns: int, zoom: int) -> None:
    """Save the conv1 filters of CHECKPOINT as an image grid."""
    from sslx.probe.networks import checkpoint_network
    from sslx.probe.viz import save_filters

    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file (got {out.name})")
    check_range(columns, "--columns", 1, 1024)
    check_range(zoom, "--zoom", 1, MAX_ZOOM)
    net = checkpoint_network(checkpoint)
    width, height = save_filters(net.model, out, columns, zoom)
    click.echo(f"wrote {out} ({width}x{height} px)", err=True)


@viz.command()
@click.argument(
    "probe_dirs", nargs=-1, required=True, metavar="PROBE_DIR...", type=click.Path(path_type=Path)
)
@out_option("Folder for ablation.md, ablation.json and ablation.png.", required=True)
def ablation(probe_dirs: tuple[Path, ...], out: Path) -> None:
    """The paper's augmentation ablation (Table 3) from `sslx probe` folders.

    Networks are placed in rows by name: supervised[-seed<k>] (a), random[-seed<k>] (b),
    <method>-<preset>-seed<k> (the preset's row, (c) none .. (j) all). Each cell is the mean
    ± half the range over seeds, beside the paper's number; the paper's criterion (scale
    rows above the rest at conv1..conv3) is evaluated. See docs/ablation.md.
    """
    from sslx.probe.ablation import write_ablation

    text = write_ablation(list(probe_dirs), out)
    click.echo(text, nl=False)
    click.echo(f"wrote {out}/ablation.md, ablation.json, ablation.png", err=True)
