"""Published numbers shown beside ours (`sslx probe --reference SET`), each declared once
with what it was measured on and where it was published. Torch-free.

- `table3`: Asano, Rupprecht & Vedaldi (ICLR 2020), Table 3: the augmentation ablation,
  linear probes on CIFAR-10 at conv1..conv4, rows (a)-(j). `sslx viz ablation` prints the
  same rows (`sslx.probe.ablation` reads them from here).
- `zhang-imagenet`: Zhang, Isola & Efros (CVPR 2017, "Split-Brain Autoencoders"), Table 2:
  AlexNet on ImageNet, linear probes at conv1..conv5, the supervised ("ImageNet-labels")
  and random ("Gaussian") rows, the reference rows of that benchmark (the single-image
  paper's ImageNet table cites them from Zhang et al.; not re-read here, docs/fidelity.md).

Reference rows are presentation only: they never enter a probe's state or its results,
so changing `--reference` rewrites the reports and never probes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sslx.errors import InputError
from sslx.settings import FREE, Setting

SUPERVISED, RANDOM = "supervised", "random"  # the kinds of probed network a row pairs with


@dataclass(frozen=True)
class Publication:
    """Where a row was published: the paper and the table the numbers are read from."""

    key: str  # how results.json names it
    short: str  # how a table's source column names it
    authors: str
    title: str
    venue: str
    table: str
    url: str

    def citation(self) -> str:
        return f'{self.authors}, "{self.title}", {self.venue}, {self.table} ({self.url})'


@dataclass(frozen=True)
class Benchmark:
    """What a set's numbers were measured on. `dataset` is spelled as sslx's `--dataset`
    names it, or "imagenet" (ILSVRC-2012, which sslx reads as an image folder)."""

    dataset: str
    label: str  # as a reader names it: "ImageNet (ILSVRC-2012)"
    classes: int
    arch: str
    input_size: int | None  # None: the source does not state it
    val: str  # the images the top-1 is measured on
    protocol: str  # how the source's probes differ from sslx's, in words


@dataclass(frozen=True)
class Published:
    """One published row: top-1 (%) per layer, as printed in its table."""

    mark: str  # the row's letter in its table ("a"), or ""
    label: str
    in_paper: str  # the row's name as its table prints it ("": not recorded here)
    top1: tuple[float, ...]  # one per layer of its set
    kind: str | None = None  # SUPERVISED / RANDOM: the probed network it pairs with
    note: str = ""  # what else sets it apart from its sslx counterpart

    @property
    def name(self) -> str:
        """As the reports name it: "(b) random", 'random ("Gaussian")'."""
        name = f"({self.mark}) {self.label}" if self.mark else self.label
        return f'{name} ("{self.in_paper}")' if self.in_paper else name


@dataclass(frozen=True)
class ReferenceSet:
    name: str  # the --reference value
    source: Publication
    benchmark: Benchmark
    layers: tuple[str, ...]
    rows: tuple[Published, ...]

    def __post_init__(self) -> None:
        for row in self.rows:  # a row with a number too few or too many is a typo
            if len(row.top1) != len(self.layers):
                raise ValueError(f"{self.name} {row.name}: {len(row.top1)} numbers")

    def percent(self, row: Published) -> dict[str, float]:
        return dict(zip(self.layers, row.top1, strict=True))


ASANO_2020 = Publication(
    "asano2020-table3",
    "Asano et al. 2020, Table 3",
    "Asano, Rupprecht & Vedaldi",
    "A critical analysis of self-supervision, or what we can learn from a single image",
    "ICLR 2020",
    "Table 3",
    "arXiv:1904.13132",
)
ZHANG_2017 = Publication(
    "zhang2017-table2",
    "Zhang et al. 2017, Table 2",
    "Zhang, Isola & Efros",
    "Split-Brain Autoencoders: Unsupervised Learning by Cross-Channel Prediction",
    "CVPR 2017",
    "Table 2",
    "arXiv:1611.09842",
)

TABLE3 = ReferenceSet(
    "table3",
    ASANO_2020,
    Benchmark(
        dataset="cifar10",
        label="CIFAR-10",
        classes=10,
        arch="alexnet",
        input_size=None,  # the paper gives none for CIFAR-10 (docs/fidelity.md)
        val="not stated",
        protocol="not described in the table beyond linear probes on frozen conv1..conv4",
    ),
    ("conv1", "conv2", "conv3", "conv4"),
    (
        Published(
            "a",
            "fully supervised",
            "",
            (66.5, 70.1, 72.4, 75.9),
            SUPERVISED,
            "what it was trained on is not recorded here",
        ),
        Published(
            "b",
            "random",
            "",
            (57.8, 55.5, 54.2, 47.3),
            RANDOM,
            "its initialisation is not recorded here; sslx's --random-init is DeepCluster's",
        ),
        Published("c", "no augmentation", "", (57.9, 56.2, 54.2, 47.8)),
        Published("d", "jitter", "", (58.9, 58.0, 57.0, 49.8)),
        Published("e", "rotation", "", (61.4, 58.8, 56.1, 47.5)),
        Published("f", "scale", "", (67.9, 69.3, 67.9, 59.1)),
        Published("g", "rotation + jitter", "", (64.9, 63.6, 61.0, 53.4)),
        Published("h", "rotation + scale", "", (67.6, 69.9, 68.0, 60.7)),
        Published("i", "jitter + scale", "", (68.1, 71.3, 69.5, 62.4)),
        Published("j", "all", "", (68.1, 72.3, 70.8, 63.5)),
    ),
)

ZHANG_IMAGENET = ReferenceSet(
    "zhang-imagenet",
    ZHANG_2017,
    Benchmark(
        dataset="imagenet",
        label="ImageNet (ILSVRC-2012)",
        classes=1000,
        arch="alexnet",
        # richzhang/colorization feature_learning_tests/linear/train_val.prototxt (the
        # protocol Table 2 follows): Caffe's AlexNet on 227 px crops.
        input_size=227,
        val="the ILSVRC-2012 validation images, one centre crop",
        protocol="each map bilinearly resized to 9,600 / 9,216 / 9,600 / 9,600 / 9,216 "
        "values, then BatchNorm and one linear layer (sslx max-pools instead)",
    ),
    ("conv1", "conv2", "conv3", "conv4", "conv5"),
    (
        Published(
            "",
            "supervised",
            "ImageNet-labels",
            (19.3, 36.3, 44.2, 48.3, 50.5),
            SUPERVISED,
            "trained on ImageNet's labels",
        ),
        Published(
            "",
            "random",
            "Gaussian",
            (11.6, 17.1, 16.9, 16.3, 14.1),
            RANDOM,
            "Gaussian initialisation; sslx's --random-init is DeepCluster's",
        ),
    ),
)

SETS = {s.name: s for s in (TABLE3, ZHANG_IMAGENET)}


def parse_sets(value: str | Sequence[str]) -> tuple[str, ...]:
    """('table3', 'zhang-imagenet') from the flag's values, each a name or a comma-separated
    list; in the order first given, each once. An unknown name is an InputError."""
    given = [value] if isinstance(value, str) else list(value)
    names = [n.strip() for text in given for n in str(text).split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise InputError(
            f"--reference: unknown set(s) {', '.join(unknown)}; give one or more of "
            f"{', '.join(SETS)}"
        )
    return tuple(dict.fromkeys(names))


REFERENCE = Setting(
    "Published numbers to show beside ours (never mixed with them) in results.md, "
    "results.json, report.html and accuracy.png, each with its source, and ours minus "
    "theirs where a probed network is their counterpart on the same benchmark: "
    "table3 (Asano et al. 2020, Table 3: CIFAR-10, AlexNet, rows (a)-(j) at conv1..conv4), "
    "zhang-imagenet (Zhang et al. 2017, Table 2: ImageNet, AlexNet, supervised and random "
    "at conv1..conv5). Repeat, or separate with commas. Reports only: a rerun with another "
    "--reference rewrites them and probes nothing again.",
    str,
    flag="--reference",
    unit="SET",
    parse=parse_sets,
    multiple=True,
    resume=FREE,  # presentation only: a rerun may change it
)


def reference_sets(names: Sequence[str]) -> list[ReferenceSet]:
    """The sets named, in that order."""
    return [SETS[name] for name in parse_sets(names)]
