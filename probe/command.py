"""`sslx probe` (flags -> networks + data + ProbeConfig -> one probe per network -> report)
and `sslx viz`.

Every option is made from a declaration: `ProbeConfig` and `ProbeOptions`
(`sslx.probe.config`), the labelled data (`sslx.common.datasets.LabelledConfig`), the
random network's geometry (`sslx.train.model.ModelConfig`) and the few settings below.
Torch-free at import, so their --help is fast; torch comes with the modules the commands
import when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sslx import settings
from sslx.common.datasets import CIFAR_DATASETS, LabelledConfig, eval_crop_ratio
from sslx.errors import InputError, check_apart, check_out_apart
from sslx.options import OUT, SEED
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.inputs import (
    CHECKPOINTS,
    DOWNLOAD,
    RANDOM_INIT,
    network_and_data_options,
    read_networks,
    read_split,
)
from sslx.probe.retrieval_command import viz_neighbours
from sslx.settings import Setting
from sslx.train.model import MAX_INPUT_SIZE, ModelConfig

MAX_ZOOM = 64  # 96 filters of 13 px at 64x: a ~10k px wide grid, already more than a screen

COLUMNS = Setting("Filters per row.", int, low=1, high=1024)
ZOOM = Setting("Pixels per filter weight.", int, low=1, high=MAX_ZOOM)
# `sslx viz style`: the smallest side of an image, read or scaled, as for a source photo
# (datagen's MIN_SOURCE_SIDE); each network also checks its own need (AlexNet at conv1
# stride 4: 63 px, for a map after conv5's max-pool).
MIN_STYLE_SIDE = 32
CONTENT = Setting(
    "The photo to repaint: its conv4 features are kept (ResNet-18: layer3).",
    Path,
    unit="IMAGE",
)
STYLE = Setting(
    "The picture whose style is painted in: the Gram matrices of every tap.", Path, unit="IMAGE"
)
STYLE_SIZE = Setting(
    "Longer side of the content image, and of the result, in pixels; the style image is "
    "scaled to the same longer side.",
    int,
    flag="--size",
    unit="PIXELS",
    low=MIN_STYLE_SIDE,
    high=MAX_INPUT_SIZE,
)
STEPS = Setting(
    "L-BFGS iterations per network, always all of them (no early stop).",
    int,
    unit="N",
    low=1,
    high=10_000,
)
STYLE_WEIGHT = Setting(
    "Weight of the style loss (each tap's Gram error relative to the style image's Gram).",
    float,
    low=0,
    open_low=True,
)
CONTENT_WEIGHT = Setting(
    "Weight of the content loss (the feature error relative to the content image's).",
    float,
    low=0,
)


@click.command()
@network_and_data_options(
    random_note="Probed like the checkpoints, built from --arch, --size, --sobel and "
    "--conv1-stride."
)
@settings.option("download", DOWNLOAD)
@settings.options(
    ProbeConfig,
    defaults={"crop_ratio": None, "ten_crop": None},
    default_text={
        "crop_ratio": "0.875 for imagefolder, 1.0 for CIFAR",
        "ten_crop": "ten crops for imagefolder; one for CIFAR, whose ten crops would be the "
        "image and its mirror",
    },
    notes={"seed": "Here: the probes' init and batch order, and --random-init's network."},
)
@settings.options(
    ProbeOptions,
    notes={"workers": "Image decoding processes (0: in the main process)."},
    default_text={"workers": "1 on CPU, all cores but one on a GPU"},
)
@settings.option(
    "out",
    OUT,
    required=True,
    note="Folder for results.{md,json,csv}, accuracy.png (knn.png, cluster.png with --eval "
    "knn, cluster), report.html and the resumable states (rerun the same command to resume).",
)
def probe(**flags: Any) -> None:
    """Linear probes on conv1..conv5 of frozen networks (top-1 / top-5 per layer); with
    --eval, also weighted kNN and k-means cluster quality per layer."""
    source = settings.build(LabelledConfig, flags)
    options = settings.build(ProbeOptions, flags)
    check_out_apart(flags["out"], settings.locations(source))
    for flag, path in settings.locations(source):
        why = "its files would be read as part of the data"
        check_apart(("--cache-dir", options.cache_dir), (flag, path), why)
    dataset = source.dataset
    config = settings.build(
        ProbeConfig,
        flags,
        # At crop ratio 1 (CIFAR) the ten crops are 5 copies of the image and its mirror.
        {"crop_ratio": eval_crop_ratio(dataset), "ten_crop": dataset not in CIFAR_DATASETS},
    )

    from sslx.probe.evaluate import evaluate_network
    from sslx.probe.html import network_panels
    from sslx.probe.neighbours import check_evaluable
    from sslx.probe.report import dims_line, write_report
    from sslx.probe.run import ProbeResult
    from sslx.train.taps import probe_dims

    networks = read_networks(flags)
    for net in networks:  # a tap one of them lacks is refused before anything is written
        config.layers_of(net.model.config)
    data = read_split(source, flags["download"])
    check_evaluable(config.evals, len(data.train), len(data.val), len(data.classes))
    out: Path = flags["out"]
    (out / "state").mkdir(parents=True, exist_ok=True)
    click.echo(
        f"data: {len(data.train)} train, {len(data.val)} val images, "
        f"{len(data.classes)} classes ({data.info['val']})",
        err=True,
    )
    info = {**data.info, "classes": len(data.classes)}
    meta = {"data": info, "config": {**vars(config), "layers": list(config.layers)}}
    panels = network_panels(networks)  # report.html's filters and training configs, once
    results: list[ProbeResult] = []
    for net in networks:
        dims = probe_dims(net.model.config, config.layers_of(net.model.config))
        click.echo(dims_line(net.name, net.model.config.input_size, dims), err=True)
        results.append(evaluate_network(net, data, config, options, out / "state"))
        text = write_report(results, meta, out, panels, options.references)
    click.echo(text)
    written = "results.md, results.json, results.csv, accuracy.png, report.html"
    click.echo(f"wrote {out}/{written}", err=True)
    pictures = [f"{name}.png" for name in ("knn", "cluster") if name in config.evals]
    if pictures:
        click.echo(f"wrote {out}/{', '.join(pictures)}", err=True)


@click.group()
def viz() -> None:
    """Pictures of trained networks, and the ablation and modern tables from probe results."""


viz.add_command(viz_neighbours, "neighbours")  # in its own module, beside its settings


@viz.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@settings.option("out", OUT, default=Path("filters.png"), note="The PNG file to write.")
@settings.option("columns", COLUMNS, default=12)
@settings.option("zoom", ZOOM, default=4)
def filters(checkpoint: Path, out: Path, columns: int, zoom: int) -> None:
    """Save the conv1 filters of CHECKPOINT as an image grid."""
    from sslx.probe.networks import checkpoint_network
    from sslx.probe.viz import filters_title, save_filters

    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file (got {out.name})")
    net = checkpoint_network(checkpoint)
    title = filters_title(net.name, net.model)
    width, height = save_filters(net.model, out, columns, zoom, title)
    click.echo(f"wrote {out} ({width}x{height} px)", err=True)


@viz.command("style")
@settings.option("content", CONTENT, required=True)
@settings.option("style", STYLE, required=True)
@settings.option(
    "checkpoints", CHECKPOINTS, note="Here: one stylised picture each, titled with its name."
)
@settings.option(
    "random_init",
    RANDOM_INIT,
    note="Here: the first checkpoint's architecture and geometry (without one, AlexNet at "
    "224 px), initialised from --seed, titled as in sslx probe.",
)
@settings.option("size", STYLE_SIZE, default=256)
@settings.option("steps", STEPS, default=50)
@settings.option("style_weight", STYLE_WEIGHT, default=1000.0)
@settings.option("content_weight", CONTENT_WEIGHT, default=1.0)
@settings.option("seed", SEED, default=0, note="Here: the --random-init network's weights.")
@settings.option("out", OUT, required=True, note="The PNG file to write.")
def style_transfer(**flags: Any) -> None:
    """Neural style transfer through each network, side by side (Gatys, Ecker, Bethge 2016).

    One picture: the content image, the style image, then the content image repainted in
    the style by each network (L-BFGS from the content image, on the Gram matrices of every
    tap and the conv4 features). See docs/probe.md, "Style transfer".
    """
    from sslx.probe.style import check_fits, load_image, save_figure, stylise

    out: Path = flags["out"]
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file (got {out.name})")
    check_out_apart(out, [("--content", flags["content"]), ("--style", flags["style"])])
    size = flags["size"]
    content = load_image(flags["content"], "--content", size, MIN_STYLE_SIDE)
    style = load_image(flags["style"], "--style", size, MIN_STYLE_SIDE)
    networks = _style_networks(flags)
    for net in networks:
        check_fits(net, content, "--content", size)
        check_fits(net, style, "--style", size)
    out.parent.mkdir(parents=True, exist_ok=True)  # a read-only place fails now, not at the end
    panels = [("content", content), ("style", style)]
    for net in networks:
        click.echo(f"{net.name}: {flags['steps']} L-BFGS steps", err=True)
        image, _ = stylise(
            net.model,
            content,
            style,
            flags["steps"],
            flags["style_weight"],
            flags["content_weight"],
        )
        panels.append((net.name, image))
    width, height = save_figure(panels, out)
    click.echo(f"wrote {out} ({width}x{height} px)", err=True)


def _style_networks(flags: dict) -> list:
    """The checkpoints, then the random network of the first one's geometry (`_networks`'
    naming: each checkpoint's run name, "random" or "random-resnet18", made unique)."""
    from sslx.probe.networks import checkpoint_network, random_network, unique_names

    networks = [checkpoint_network(p) for p in flags["checkpoints"]]
    if flags["random_init"]:
        geometry = networks[0].model.config if networks else ModelConfig()
        networks.append(random_network(geometry, flags["seed"]))
    if not networks:
        raise InputError("nothing to draw: give --checkpoint CKPT and/or --random-init")
    return unique_names(networks)


@viz.command()
@click.argument(
    "probe_dirs", nargs=-1, required=True, metavar="PROBE_DIR...", type=click.Path(path_type=Path)
)
@settings.option(
    "out", OUT, required=True, note="The folder for ablation.md, ablation.json, ablation.png."
)
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


@viz.command()
@click.argument(
    "probe_dirs", nargs=-1, required=True, metavar="PROBE_DIR...", type=click.Path(path_type=Path)
)
@settings.option(
    "out", OUT, required=True, note="The folder for modern.md, modern.json, modern.png."
)
def modern(probe_dirs: tuple[Path, ...], out: Path) -> None:
    """The paper's question for the multi-view methods, from `sslx probe` folders.

    Networks are placed in rows by name: <method>[-<arch>]-<preset>-seed<k>, and the
    references supervised[-<arch>][-seed<k>] and random[-<arch>][-seed<k>] (no <arch>:
    AlexNet). One table per architecture at its probe layers, each cell the mean ± half the
    range over seeds, each trained row minus random, and each run's collapse measures per
    epoch. See docs/modern.md.
    """
    from sslx.probe.modern import write_modern

    text = write_modern(list(probe_dirs), out)
    click.echo(text, nl=False)
    click.echo(f"wrote {out}/modern.md, modern.json, modern.png", err=True)
