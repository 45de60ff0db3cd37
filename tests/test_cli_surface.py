"""The settings refactor kept every command's flags and defaults, and every method's config.

tests/golden/cli_surface.json was recorded at commit a3cb2fe, before the flags were
derived from their declarations (`sslx.settings`): every option of every command (its
spellings, type, default, required or not) and the config.yaml each method gets from
its defaults. The few deliberate changes since are listed in CHANGED with their reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.core import ParameterSource

from sslx import settings
from sslx.cli import cli
from sslx.train.config import OPTIM_ADDED, TrainConfig
from sslx.train.methods import SPECS

GOLDEN = Path(__file__).parent / "golden" / "cli_surface.json"
OLD_METHODS = ("bigan", "deepcluster", "rotnet", "supervised")  # those the golden file holds
CHOICES = {"choice": ["imagefolder", "cifar10", "cifar100"]}
CHANGED = {
    # One declaration with sslx probe's, which always checked them when parsing.
    ("train", "--dataset", "type"): CHOICES,
    ("train", "--data-dir", "type"): "path",
    ("train", "--val-dir", "type"): "path",
    # Declared with its choices: a typo fails at once, not after the run folder exists.
    ("train", "--kmeans-backend", "type"): {"choice": ["auto", "faiss", "torch"]},
    # The registered methods, now with SimCLR, BYOL, SimSiam and DINO.
    ("train", "--method", "type"): {"choice": sorted(SPECS)},
    # Every tap of each network (AlexNet's conv1..conv5, ResNet-18's stem..layer4).
    ("probe", "--layers", "default"): "",
    # The method's (0.08 for all but SimSiam's 0.2 and DINO's global views' 0.4).
    ("train", "--crop-scale-min", "default"): None,
}
# Options added since, each with the issue that added it.
ADDED = {
    # The multi-view methods (SimCLR, BYOL, SimSiam, DINO): the optimiser and its schedule.
    ("train", "--optimizer"),
    ("train", "--lr-schedule"),
    ("train", "--warmup-epochs"),
    ("train", "--final-lr"),
    ("train", "--lr-scaling"),
    # Decoding on the GPU: nvJPEG and crops on the training device (issue 29).
    ("train", "--decode"),
    # ResNet-18 beside AlexNet (issue 25).
    ("train", "--arch"),
    ("probe", "--arch"),
    # kNN and k-means cluster quality per layer beside the linear probes (issue 26).
    ("probe", "--eval"),
    # Published numbers beside ours, each with its source (the paper's Table 3, Zhang et al.).
    ("probe", "--reference"),
    # The features' kNN top-1 per tap while training (issue 26).
    ("train", "--monitor"),
    ("train", "--monitor-dataset"),
    ("train", "--monitor-images"),
    # ... and the options of those methods, from their specs.
    *(
        ("train", "--" + key.replace("_", "-"))
        for name, spec in SPECS.items()
        if name not in OLD_METHODS
        for key in settings.declared(spec.options)
    ),
}
# Commands added since, each with the issue that added it.
ADDED_COMMANDS = {
    "viz modern",  # the modern-methods table (issue 25)
    "viz style",  # neural style transfer through each network
    "viz neighbours",  # retrieval pictures: each query's nearest training images
}
FIELDS = ("secondary_opts", "type", "default", "required", "is_flag", "multiple", "nargs")


def _jsonable(value: Any) -> Any:
    if callable(value):
        return f"<callable {getattr(value, '__name__', type(value).__name__)}>"
    if type(value).__name__ == "Sentinel":  # click 8.2+: no default given
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(x) for x in value]
    return value


def _param(p: click.Parameter) -> dict:
    kind = {"choice": list(p.type.choices)} if isinstance(p.type, click.Choice) else p.type.name
    return {
        "opts": p.opts,
        "secondary_opts": p.secondary_opts,
        "type": kind,
        "default": _jsonable(p.default),
        "required": p.required,
        "is_flag": getattr(p, "is_flag", False),
        "multiple": p.multiple,
        "nargs": p.nargs,
    }


def commands() -> dict[str, dict[tuple, dict]]:
    """Every leaf command's parameters, by their first spelling."""
    out = {}

    def walk(group: click.Group, ctx: click.Context, prefix: list[str]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            with click.Context(command, info_name=name, parent=ctx) as sub:
                if isinstance(command, click.Group):
                    walk(command, sub, [*prefix, name])
                else:
                    params = [_param(p) for p in command.params]
                    out[" ".join([*prefix, name])] = {tuple(p["opts"]): p for p in params}

    with click.Context(cli, info_name="sslx") as ctx:
        walk(cli, ctx, [])
    return out


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def test_every_command_keeps_its_flags_and_defaults(golden):
    now = commands()
    before = {
        name: {tuple(p["opts"]): p for p in params.values()}
        for name, params in golden["commands"].items()
    }
    assert sorted(now) == sorted([*before, *ADDED_COMMANDS])
    for name, params in before.items():
        added = {opts for opts in now[name] if (name, opts[0]) in ADDED}
        assert sorted(set(now[name]) - added) == sorted(params), name
        for opts, was in params.items():
            for field in FIELDS:
                expected = CHANGED.get((name, opts[0], field), was[field])
                assert now[name][opts][field] == expected, (name, opts, field)


@pytest.mark.parametrize("method", sorted(OLD_METHODS))
def test_every_method_keeps_its_default_config(method, golden):
    from sslx.train.command import new_config, train

    shards = ["--shards", "S"] if SPECS[method].needs_shards else []
    expected = golden["train_configs"][method]
    # The optimiser settings added since: the references' (Adam for bigan, SGD with step
    # decay for the others), as `TrainConfig.from_dict` fills them in for older runs.
    added = {k: SPECS[method].defaults.values()[k] for k in OPTIM_ADDED}
    assert added["optimizer"] == ("adam" if method == "bigan" else "sgd")
    assert added["lr_schedule"] == "step" and added["warmup_epochs"] == 0
    expected = {**expected, "optim": {**expected["optim"], **added}}
    assert TrainConfig.for_method(method, shards="S" if shards else "").to_dict() == expected
    ctx = train.make_context("train", ["--method", method, *shards])
    given = {k for k in ctx.params if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    assert new_config(ctx.params, given).to_dict() == expected
