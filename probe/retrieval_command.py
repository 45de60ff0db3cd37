"""`sslx viz neighbours` (registered on `sslx viz` by `sslx.probe.command`): the probe's
inputs and feature settings, declared once elsewhere and bound here, plus the three
settings of its own below. Torch-free at import, for a fast --help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sslx import settings
from sslx.common.datasets import CIFAR_DATASETS, LabelledConfig, eval_crop_ratio
from sslx.errors import InputError, check_apart, check_out_apart
from sslx.options import OUT
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.inputs import DOWNLOAD, network_and_data_options, read_networks, read_split
from sslx.settings import Setting
from sslx.train.model import parse_layers

# Bounds that keep the picture readable: 100 rows of 64 neighbours is already ~7k x 10k px
# per panel at CIFAR's 96 px tiles.
MAX_QUERIES, MAX_NEIGHBOURS = 100, 64


def _one_layer(text: str) -> str:
    taps = parse_layers(text, "--layer", at_least_one=True)
    if len(taps) != 1:
        raise InputError(f"--layer takes one tap (got {text!r}); draw another layer in another run")
    return taps[0]


LAYER = Setting(
    "The tap whose pooled features are searched (AlexNet: conv1..conv5; ResNet-18: stem, "
    "layer1..layer4).",
    str,
    unit="LAYER",
    parse=_one_layer,
)
QUERIES = Setting(
    "Rows: the first validation image of each of N classes, the classes spread evenly over "
    "the class list (every class when N is their number); fixed by the data, never drawn.",
    int,
    unit="N",
    low=1,
    high=MAX_QUERIES,
)
NEIGHBOURS = Setting(
    "Nearest training images drawn after each query, most similar first.",
    int,
    unit="K",
    low=1,
    high=MAX_NEIGHBOURS,
)


@click.command("neighbours")
@network_and_data_options(
    random_note="Built as sslx probe builds it, from --arch, --size, --sobel, --conv1-stride, "
    "--seed.",
    checkpoints_note="Here: one panel each, titled with its name.",
    data_notes={
        "data_dir": "Here, as for sslx probe --eval knn: its training split is the memory "
        "searched, its validation split gives the queries."
    },
)
@settings.option("download", DOWNLOAD)
@settings.option(
    "layer",
    LAYER,
    default_text="each network's middle tap: conv3 for AlexNet, layer2 for ResNet-18",
)
@settings.option("queries", QUERIES, default=6)
@settings.option("neighbours", NEIGHBOURS, default=8)
@settings.options(
    ProbeConfig,
    only=("layers", "batch_size", "crop_ratio", "ten_crop", "seed"),
    defaults={"crop_ratio": None, "ten_crop": None},
    default_text={
        "crop_ratio": "0.875 for imagefolder, 1.0 for CIFAR",
        "ten_crop": "as sslx probe: ten crops for imagefolder, one for CIFAR",
    },
    notes={
        "layers": "Here: only with --cache-dir, the taps the cache holds; give the probe's "
        "--layers to reuse its cache (without --cache-dir only --layer is extracted).",
        "batch_size": "Here: of the feature extraction, part of the cache's key as in sslx probe.",
        "ten_crop": "Here: the validation cache's crops, for a --cache-dir cache the probe "
        "shares; the search takes the centre crop either way (one crop without --cache-dir).",
        "seed": "Here: --random-init's weights, as in sslx probe.",
    },
)
@settings.options(
    ProbeOptions,
    only=("workers", "device", "cache_dir", "quiet"),
    notes={
        "workers": "Image decoding processes (0: in the main process).",
        "cache_dir": "Here: sslx probe's --cache-dir: a cache it wrote for the same network, "
        "data and feature settings is read, not extracted again, and one written here "
        "serves the probe.",
    },
    default_text={"workers": "1 on CPU, all cores but one on a GPU"},
)
@settings.option("out", OUT, required=True, note="The PNG file to write.")
def viz_neighbours(**flags: Any) -> None:
    """Retrieval pictures: a few fixed validation images, each followed by its nearest
    training images at one tap, one panel per network side by side.

    The memory is the probe's training split and the queries come from its validation
    split (the same split as sslx probe and its --eval knn); the features are the probe's
    pooled, cached taps, searched by exact cosine similarity. A neighbour's frame is green
    when it shares the query's class, red otherwise. See docs/probe.md, "Retrieval
    pictures".
    """
    out: Path = flags["out"]
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file (got {out.name})")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a .png file")
    source = settings.build(LabelledConfig, flags)
    options = settings.build(ProbeOptions, flags)
    check_out_apart(out, settings.locations(source))
    for flag, path in settings.locations(source):
        why = "its files would be read as part of the data"
        check_apart(("--cache-dir", options.cache_dir), (flag, path), why)
    dataset = source.dataset
    fallback = {"crop_ratio": eval_crop_ratio(dataset), "ten_crop": dataset not in CIFAR_DATASETS}
    config = settings.build(ProbeConfig, flags, fallback)
    if config.layers and options.cache_dir is None:
        raise InputError("--layers only applies with --cache-dir (the taps its cache holds)")
    layer = _one_layer(flags["layer"]) if flags["layer"] else None

    from sslx.probe.retrieval import (
        check_counts,
        check_writable,
        retrieve,
        save_neighbours,
        summary_line,
        tap_of,
    )

    networks = read_networks(flags, "draw")
    cached = options.cache_dir is not None
    taps = [tap_of(net, layer, config, cached) for net in networks]  # before any data is read
    data = read_split(source, flags["download"], "a retrieval picture")
    queries, k = flags["queries"], flags["neighbours"]
    check_counts(len(data.train), len(data.val), len(data.classes), queries, k)
    check_writable(out)  # a read-only place fails now, not after the extraction
    found = []
    for net, tap in zip(networks, taps, strict=True):
        result = retrieve(net, data, config, options, tap, queries, k)
        seconds = result.extract_seconds
        how = f"extracted in {seconds:.0f} s" if seconds else f"read from {options.cache_dir}"
        click.echo(f"{net.name}: {tap} features {how}", err=True)
        click.echo(summary_line(result))
        found.append(result)
    width, height = save_neighbours(found, data, config.crop_ratio, out)
    click.echo(f"wrote {out} ({width}x{height} px)", err=True)
