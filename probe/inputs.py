"""What `sslx probe` and `sslx viz neighbours` read: the networks (`--checkpoint`,
`--random-init`) and the labelled data, their flags declared once here and the step from
those flags to the networks and the split. Torch-free at import, for a fast --help.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sslx import settings
from sslx.common.datasets import LabelledConfig
from sslx.errors import InputError
from sslx.settings import Setting
from sslx.train.model import ModelConfig

if TYPE_CHECKING:
    from sslx.common.labelled import LabelledSplit
    from sslx.probe.run import Network

CHECKPOINTS = Setting(
    "sslx checkpoint (file or run folder) to probe; repeat to compare several side by side.",
    Path,
    flag="--checkpoint",
    unit="CHECKPOINT",
    multiple=True,
)
RANDOM_INIT = Setting('Also an untrained network (the paper\'s "Random" row).', bool, switch=False)
DOWNLOAD = Setting(
    "Download CIFAR-10/100 into --data-dir first (needs internet).", bool, switch=False
)


def network_and_data_options(
    random_note: str, checkpoints_note: str = "", data_notes: dict[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flags that choose the networks (--checkpoint, --random-init and its geometry)
    and the labelled data, as `sslx probe` and `sslx viz neighbours` both take them; the
    notes say what one command means by them."""
    decorators = [
        settings.option("checkpoints", CHECKPOINTS, note=checkpoints_note),
        settings.option("random_init", RANDOM_INIT, note=random_note),
        settings.options(
            ModelConfig,
            only=("arch", "input_size", "sobel", "conv1_stride"),
            defaults={"input_size": None},
            default_text={"input_size": "the first checkpoint's, else 224"},
            prefix="[--random-init]",
        ),
        settings.options(
            LabelledConfig,
            defaults={"val_dir": None},
            default_text={"val_fraction": "0.1; CIFAR pickles keep their test split"},
            notes=data_notes,
            required=("data_dir",),
        ),
    ]

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):  # the first listed is the outermost
            command = decorator(command)
        return command

    return apply


def read_networks(flags: dict[str, Any], what: str = "probe") -> list[Network]:
    """The checkpoints, then the random network (`--random-init`: `--size`, else the first
    checkpoint's size, else 224 px; from `--seed`), their names made unique. `what` is the
    verb of the "nothing to ..." message."""
    from sslx.probe.networks import checkpoint_network, random_network, unique_names

    networks = [checkpoint_network(p) for p in flags["checkpoints"]]
    if flags["random_init"]:
        size = flags["input_size"] or (networks[0].model.config.input_size if networks else 224)
        geometry = ModelConfig(
            arch=flags["arch"],
            input_size=size,
            sobel=flags["sobel"],
            conv1_stride=flags["conv1_stride"],
        )
        networks.append(random_network(geometry, flags["seed"]))
    elif flags["input_size"] is not None:
        raise InputError("--size only applies to --random-init (checkpoints fix their own size)")
    if not networks:
        raise InputError(f"nothing to {what}: give --checkpoint CKPT and/or --random-init")
    return unique_names(networks)


def read_split(source: LabelledConfig, download: bool, what: str = "a probe") -> LabelledSplit:
    """The labelled training and validation split the flags name; fewer than two classes
    is refused (every probe would score 100%, every neighbour would share its class)."""
    from sslx.common.labelled import load_labelled

    data = load_labelled(
        source.dataset,
        Path(source.data_dir),
        val_dir=Path(source.val_dir) if source.val_dir else None,
        val_fraction=source.val_fraction,
        split_seed=source.split_seed,
        download=download,
    )
    if len(data.classes) < 2:
        raise InputError(f"{source.data_dir} has {len(data.classes)} class(es); {what} needs 2+")
    return data
