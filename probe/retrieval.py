"""Retrieval pictures for `sslx viz neighbours`: a few fixed validation images, each
followed by its nearest training images at one tap, one panel per network.

- Memory and queries: the probe's training split is searched, for images of its
  validation split, as `sslx probe --eval knn` searches (`sslx.probe.evaluate`), so a
  query is never in the memory.
- Features: the probe's pooled taps from its feature cache (`NetworkCaches`: float16,
  the evaluation transform, no augmentation), one row per image; a ten-crop validation
  cache gives its centre crop (`layer_features`), which is how the memory was seen.
- Search: `sslx.common.knn.nearest`, exact cosine in float32, ties to the lower index.
- Queries: the first validation image of each of N classes spread evenly over the classes
  (`pick_queries`), fixed by the data and N: no seed, so every network and every run
  draws the same rows.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from sslx.atomic import atomic_write
from sslx.common.knn import nearest
from sslx.common.labelled import LabelledSplit
from sslx.errors import InputError
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.data import eval_transform
from sslx.probe.features import FeatureCache, FrozenTrunk, NetworkCaches
from sslx.probe.neighbours import layer_features
from sslx.probe.run import Network, _slug, resolved
from sslx.probe.style import _shorten
from sslx.probe.viz import titled
from sslx.train.model import LAYERS, check_layers, spell_layers

MIN_TILE = 96  # px: images are enlarged by a whole factor (nearest) to at least this side
BORDER = 4  # the agreement frame around each tile
PAD = 2  # white between two neighbours
GAP = 44  # between a query and its neighbours; holds the row's "same / k"
CAPTION_PX = 11  # class names under the tiles
CAPTION_H = CAPTION_PX + 7
ROW_PAD = 6  # white between rows
MARGIN = 8  # around a panel's rows
SEPARATION = 24  # between two panels
SAME, OTHER, QUERY = (20, 150, 40), (210, 30, 30), (70, 70, 70)  # frame colours


@dataclass(frozen=True)
class Retrieval:
    """One network's rows: each query (a validation index) with its k nearest training
    images, most similar first, their cosine similarities and labels."""

    name: str
    layer: str
    input_size: int
    queries: list[int]
    query_labels: list[int]
    neighbours: list[list[int]]
    similarities: list[list[float]]
    labels: list[list[int]]
    extract_seconds: float = 0.0  # 0: every feature came from an existing cache

    def same_class(self) -> list[int]:
        """How many of each row's neighbours share the query's class."""
        pairs = zip(self.query_labels, self.labels, strict=True)
        return [sum(x == q for x in row) for q, row in pairs]

    def fraction(self) -> float:
        """The mean over the rows of the fraction of same-class neighbours."""
        k = len(self.neighbours[0])
        return sum(self.same_class()) / (k * len(self.queries))


def middle_layer(arch: str) -> str:
    """The middle of a network's five taps: AlexNet's conv3, ResNet-18's layer2."""
    taps = LAYERS[arch]
    return taps[len(taps) // 2]


def tap_of(network: Network, layer: str | None, config: ProbeConfig, cached: bool) -> str:
    """The tap searched on `network`: `layer`, or its middle one; with a cache (`cached`)
    the tap must be among the cache's (`config.layers_of`)."""
    model = network.model.config
    tap = layer or middle_layer(model.arch)
    check_layers((tap,), model.arch, "--layer")
    if cached and tap not in config.layers_of(model):
        raise InputError(
            f"--layer {tap} is not among --layers {spell_layers(config.layers)}, the taps "
            "the cache holds; add it there"
        )
    return tap


def check_counts(n_train: int, n_val: int, classes: int, queries: int, k: int) -> None:
    """Refuse, before any extraction, more neighbours than the memory holds or more
    queries than there are classes (one query per class) or validation images."""
    if k > n_train:
        raise InputError(
            f"--neighbours {k}: the training split, the memory searched, has only {n_train} images"
        )
    if queries > min(classes, n_val):
        raise InputError(
            f"--queries {queries}: each query is the first validation image of its own class, "
            f"and there are {classes} classes and {n_val} validation images"
        )


def check_writable(out: Path) -> None:
    """Make `out`'s folder and create and remove a file there: a place that cannot take
    the picture fails before the extraction, not after it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out.parent):
        pass


def pick_queries(labels: Sequence[int] | torch.Tensor, count: int) -> list[int]:
    """`count` indices into `labels`, one per class: of the P classes present (sorted),
    classes present[i * P // count] for i < count, each its first index in `labels`."""
    labels = torch.as_tensor(labels).tolist()
    first: dict[int, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    present = sorted(first)
    if count > len(present):
        raise InputError(
            f"--queries {count}: the validation split holds images of only {len(present)} "
            "classes, and each query is one class's"
        )
    return [first[present[i * len(present) // count]] for i in range(count)]


def _rows(cache: FeatureCache, layer: str, indices: list[int]) -> FeatureCache:
    """The samples `indices` of one layer of `cache`, every crop of each (a small copy)."""
    index = torch.as_tensor(indices)
    rows = (index[:, None] * cache.crops + torch.arange(cache.crops)).flatten()
    return FeatureCache({layer: cache.features[layer][rows]}, cache.labels[index], cache.crops)


def search_caches(
    train: FeatureCache,
    val: FeatureCache,
    layer: str,
    queries: list[int],
    k: int,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, training indices), each len(queries) x k, most similar first: the
    validation samples `queries` (their centre crop) against every training sample."""
    memory = layer_features(train, layer)
    wanted = layer_features(_rows(val, layer, queries), layer)
    found = list(nearest(memory, wanted, k, device=device))
    return torch.cat([v for v, _ in found]).cpu(), torch.cat([i for _, i in found]).cpu()


def retrieve(
    network: Network,
    data: LabelledSplit,
    config: ProbeConfig,
    options: ProbeOptions,
    layer: str,
    queries: int,
    k: int,
) -> Retrieval:
    """The k nearest training images of `queries` validation images at `layer`.

    The features are the network's probe cache: with `options.cache_dir`, the one
    `sslx probe --cache-dir` reads and writes (every tap of `config.layers_of`, the
    validation split in `config.ten_crop`'s crops), reused when it matches; without, one
    extracted in memory for `layer` alone, the validation split in one crop.

    Memory, with N training and V validation images, c crops per validation image, D the
    cached taps' dimensions and D_l the layer's: the cache, 2 (N + c V) D bytes, in memory
    or on disk; the memory rows once as float32, 4 N D_l (on a GPU a second copy there);
    the search by chunks of 512 queries, here one chunk of Q queries, 5 Q N bytes. CIFAR-10
    at AlexNet's conv3 without --cache-dir (N = 45,000, V = 5,000, D = D_l = 9,600): 0.96
    GB of cache + 1.7 GB of float32 rows, about 2.7 GB at the peak (4.0 GB resident measured,
    torch included)."""
    options, device = resolved(options)
    if options.cache_dir is None:
        config = dataclasses.replace(config, layers=(layer,), ten_crop=False)
    taps = config.layers_of(network.model.config)
    cache_dir = options.cache_dir / _slug(network.name) if options.cache_dir else None
    caches = NetworkCaches(network, data, config, options, cache_dir)
    trunk = FrozenTrunk(network.model, taps).to(device)
    train, val = caches.get(trunk, ("train", "val"), "sslx viz neighbours")
    picked = pick_queries(val.labels, queries)
    similarity, index = search_caches(train, val, layer, picked, k, device)
    return Retrieval(
        name=network.name,
        layer=layer,
        input_size=network.model.config.input_size,
        queries=picked,
        query_labels=val.labels[picked].tolist(),
        neighbours=index.tolist(),
        similarities=similarity.tolist(),
        labels=train.labels[index].tolist(),
        extract_seconds=caches.seconds,
    )


def summary_line(result: Retrieval) -> str:
    """One line per network: the mean same-class fraction of the drawn rows."""
    k, rows = len(result.neighbours[0]), len(result.queries)
    same = sum(result.same_class())
    return (
        f"{result.name} {result.layer}: {result.fraction():.3f} of the {k} nearest training "
        f"images share the query's class ({same} of {k * rows}, {rows} queries)"
    )


Views = Callable[[str, int, int], torch.Tensor]  # (split, index, size) -> uint8 3 x S x S


def zoom_for(side: int) -> int:
    """The whole enlargement that brings a `side` px image to at least `MIN_TILE` px."""
    return max(1, -(-MIN_TILE // side))


def retrieval_panel(result: Retrieval, views: Views, classes: Sequence[str]) -> Image.Image:
    """One network's rows under a header: the query in a grey frame, its row's same-class
    count, then the neighbours in green (the query's class) or red frames; under each
    tile its class, under a neighbour also its cosine similarity to the query."""
    zoom = zoom_for(result.input_size)
    cell = result.input_size * zoom + 2 * BORDER
    k, rows = len(result.neighbours[0]), len(result.queries)
    width = 2 * MARGIN + cell + GAP + k * cell + (k - 1) * PAD
    height = 2 * MARGIN + CAPTION_H + rows * (cell + CAPTION_H) + (rows - 1) * ROW_PAD
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=CAPTION_PX)  # Pillow's own font: no system fonts
    first = MARGIN + cell + GAP  # the first neighbour's left edge
    header = [
        (MARGIN, cell, "query"),
        (first, width - MARGIN - first, "nearest, most similar first"),
    ]
    for left, span, text in header:
        text = _shorten(draw, text, font, span)
        x = left + (span - draw.textlength(text, font=font)) / 2
        draw.text((x, MARGIN), text, fill="black", font=font)
    counts = result.same_class()
    for r, (query, label) in enumerate(zip(result.queries, result.query_labels, strict=True)):
        top = MARGIN + CAPTION_H + r * (cell + CAPTION_H + ROW_PAD)
        tiles = [(MARGIN, "val", query, QUERY, classes[label])]
        row = zip(result.neighbours[r], result.labels[r], result.similarities[r], strict=True)
        for j, (index, found, similarity) in enumerate(row):
            colour = SAME if found == label else OTHER
            caption = f"{similarity:.2f} {classes[found]}"  # a long name is cut, not the number
            tiles.append((first + j * (cell + PAD), "train", index, colour, caption))
        for left, split, index, colour, caption in tiles:
            draw.rectangle((left, top, left + cell - 1, top + cell - 1), fill=colour)
            picture = views(split, index, result.input_size)
            image.paste(_enlarged(picture, zoom), (left + BORDER, top + BORDER))
            text = _shorten(draw, caption, font, cell)
            x = left + (cell - draw.textlength(text, font=font)) / 2
            draw.text((x, top + cell + 3), text, fill="black", font=font)
        count = f"{counts[r]}/{k}"
        x = MARGIN + cell + (GAP - draw.textlength(count, font=font)) / 2
        draw.text((x, top + (cell - CAPTION_PX) / 2), count, fill="black", font=font)
    return image


def _enlarged(picture: torch.Tensor, zoom: int) -> Image.Image:
    """A uint8 3 x S x S image as a PIL image, each pixel a zoom x zoom block."""
    image = Image.fromarray(picture.permute(1, 2, 0).contiguous().numpy())
    return image.resize((image.width * zoom, image.height * zoom), Image.Resampling.NEAREST)


def neighbours_figure(
    results: Sequence[Retrieval], views: Views, classes: Sequence[str], title: str
) -> Image.Image:
    """Each network's `retrieval_panel` under its title (name, tap, same-class share), side by
    side and top-aligned, all under `title`."""
    panels = []
    for result in results:
        k, rows = len(result.neighbours[0]), len(result.queries)
        same = sum(result.same_class())
        heading = (
            f"{result.name}, {result.layer}: {same}/{k * rows} neighbours of the query's class "
            f"({100 * result.fraction():.0f}%)"
        )
        panels.append(titled(retrieval_panel(result, views, classes), heading))
    width = sum(p.width for p in panels) + SEPARATION * (len(panels) - 1)
    sheet = Image.new("RGB", (width, max(p.height for p in panels)), "white")
    left = 0
    for picture in panels:
        sheet.paste(picture, (left, 0))
        left += picture.width + SEPARATION
    return titled(sheet, title)


def save_neighbours(
    results: Sequence[Retrieval], data: LabelledSplit, crop_ratio: float, out: Path
) -> tuple[int, int]:
    """Draw the results with each image as its network saw it (the evaluation transform
    at the network's input size) and write the PNG atomically; returns its (width, height)."""
    splits = {"train": data.train, "val": data.val}
    seen: dict[tuple[str, int, int], torch.Tensor] = {}

    def views(split: str, index: int, size: int) -> torch.Tensor:
        if (split, index, size) not in seen:  # a neighbour of several queries, or networks
            seen[split, index, size] = eval_transform(size, crop_ratio)(splits[split][index][0])
        return seen[split, index, size]

    k = len(results[0].neighbours[0])
    title = (
        f"{data.info.get('dataset', 'data')}: validation queries ({data.info.get('val', '')}), "
        f"then their {k} nearest training images by cosine similarity; "
        "green frame: the query's class, red: another"
    )
    figure = neighbours_figure(results, views, data.classes, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as f:
        figure.save(f, format="PNG")
    return figure.size
