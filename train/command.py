"""`sslx train`: flags -> TrainConfig + RunOptions -> `loop.train`.

Torch-free at import, so `sslx train --help` is fast: the method specs give the options
and defaults, and the modules that import torch are imported when the command runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from sslx.errors import InputError, check_out_apart, check_range
from sslx.options import (
    device_option,
    out_option,
    parse_milestones,
    quiet_option,
    seed_option,
    workers_option,
)
from sslx.train.methods.specs import SPECS
from sslx.train.precision import PRECISIONS, check_amp, precision_from_flags
from sslx.train.resume import FIELDS, MOVABLE, RESUMABLE, as_flag, check_not_finished, flat

if TYPE_CHECKING:
    from sslx.train.config import TrainConfig


def _method_options(command):
    """Add each method's own options (e.g. DeepCluster's --clusters) to the command."""
    for name, spec in SPECS.items():
        for key, option in spec.options.items():
            command = click.option(
                f"--{key.replace('_', '-')}",
                key,
                type=option.type,
                default=None,
                help=f"[{name}] {option.help}  [default: {option.default}]",
            )(command)
    return command


def _methods_epilog() -> str:
    width = max(map(len, SPECS))
    lines = [f"  {name:<{width}}  {spec.summary}" for name, spec in sorted(SPECS.items())]
    return "\b\nMethods:\n" + "\n".join(lines)


@click.command(epilog=_methods_epilog())
@click.option("--shards", type=click.Path(path_type=Path), help="Shard folder from sslx generate.")
@click.option(
    "--method",
    type=click.Choice(sorted(SPECS)),
    help="Pretraining method (required unless --resume); see Methods below.",
)
@out_option(
    "Run folder for config.yaml, metrics.jsonl, TensorBoard events and checkpoint.pt.  "
    "[default: runs/METHOD]"
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option(
    "--size",
    type=int,
    default=None,
    help="Model input size in pixels (224, 64, 32…).  [default: the method's: 64 for "
    "bigan, 224 for the others]",
)
@click.option(
    "--sobel/--no-sobel",
    default=None,
    help="Frozen grey + Sobel front end.  [default: the method's paper setting]",
)
@click.option(
    "--classifier-width",
    type=int,
    default=4096,
    help="Width of fc6/fc7; narrower is much faster on CPU.",
)
@click.option(
    "--conv1-stride",
    type=int,
    default=0,
    help="conv1 stride; 0 picks 4 (>=128 px), 2 (>=64 px) or 1.",
)
@click.option("--epochs", type=int, default=None, help="Epochs.  [default: the method's]")
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Images per step: the global batch, split over ranks.  [default: the method's]",
)
@click.option("--lr", type=float, default=None, help="Learning rate.  [default: the method's]")
@click.option(
    "--momentum",
    type=float,
    default=None,
    help="SGD momentum (Adam's beta1 for bigan).  [default: the method's]",
)
@click.option(
    "--weight-decay", type=float, default=None, help="Weight decay.  [default: the method's]"
)
@click.option(
    "--nesterov/--no-nesterov", default=None, help="Nesterov momentum.  [default: the method's]"
)
@click.option(
    "--lr-milestones",
    default=None,
    help="Epochs at which the LR is multiplied by --lr-gamma, e.g. 15,30,45; any past "
    "--epochs are kept (for a longer resume) with a note.  [default: the method's]",
)
@click.option(
    "--lr-gamma", type=float, default=None, help="LR decay factor.  [default: the method's]"
)
@click.option(
    "--crop-scale-min",
    type=float,
    default=0.08,
    help="Train crop: smallest area fraction of a patch.",
)
@click.option(
    "--crop-scale-max", type=float, default=1.0, help="Train crop: largest area fraction."
)
@click.option(
    "--aspect-ratio-min",
    type=float,
    default=0.75,
    help="Train crop: h/w (and so w/h) log-uniform in [this, 1/this].",
)
@click.option("--flip-prob", type=float, default=0.5, help="Probability of a horizontal flip.")
@seed_option("Seed of the init, data order, crops and dropout.")
@click.option(
    "--init",
    "init",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoint whose conv layers start this run: those in --freeze, or all five.",
)
@click.option(
    "--freeze",
    default="",
    help="Comma-separated conv layers kept fixed, e.g. conv1,conv2 (the paper's Table 4).",
)
@click.option(
    "--shuffle-buffer", type=int, default=5000, help="Samples in each worker's shuffle buffer."
)
@click.option(
    "--max-bad-fraction",
    type=float,
    default=0.001,
    help="Fail if more than this fraction of an epoch's samples is unreadable.",
)
@workers_option(
    "Loader processes per rank (0: in the main process).  [default: 1 on CPU; on a GPU the "
    "usable cores per local GPU, less one]",
    default=None,
)
@device_option("Where to train.")
@click.option(
    "--dist-timeout-minutes",
    type=float,
    default=120.0,
    help="Under torchrun: how long a collective may wait before the job fails (NCCL's "
    "default is 10; DeepCluster's other ranks wait while rank 0 clusters).",
)
@click.option("--compile", is_flag=True, help="torch.compile the model.")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Step arithmetic, kept in config.yaml: auto = bf16 autocast on CUDA, fp32 on CPU; "
    "fp32 everywhere; bf16 = bf16 autocast on CPU too (fast on CPUs with AVX-512 BF16 or "
    "AMX).  [default: auto]",
)
@click.option(
    "--amp/--no-amp",
    default=True,
    help="Old switch within --precision auto: --no-amp keeps CUDA in fp32 (a new run "
    "records it as --precision fp32).",
)
@click.option(
    "--channels-last/--no-channels-last",
    default=None,
    help="channels-last memory format; on CPU it helped BiGAN and bf16 runs, not fp32 "
    "RotNet (benchmarks/train_cpu.py).  [default: on CUDA only]",
)
@click.option("--log-every", type=int, default=20, help="Steps between metrics records.")
@click.option(
    "--checkpoint-every",
    type=int,
    default=1000,
    help="Steps between checkpoints (plus one per epoch).",
)
@click.option(
    "--max-steps", type=int, default=None, help="Stop after this many steps in all (resumable)."
)
@quiet_option()
@click.option(
    "--verify-shards",
    is_flag=True,
    help="Check every shard's sha256 against the manifest before training (reads all "
    "shards once); their sizes are always checked.",
)
@_method_options
@click.pass_context
def train(ctx: click.Context, **flags) -> None:
    """Pretrain AlexNet on patch shards with a self-supervised method (or, with --method
    supervised, train it with labels for the reference row)."""
    from sslx.train.config import RunOptions
    from sslx.train.loop import train as run_training
    from sslx.train.state import prepare_run_dir

    if flags["out"] is None:
        if flags["method"] is None:
            raise InputError("--out is required with --resume (the run folder)")
        flags["out"] = Path("runs") / flags["method"]
    out = flags["out"]
    resume = flags["resume"]
    from sslx.seeds import check_seed

    check_seed(flags["seed"])
    if flags["workers"] is not None:
        check_range(flags["workers"], "--workers", 0)
    if resume:
        config = _resumed_config(ctx, prepare_run_dir(out, True), flags)
        check_not_finished(out, config)
    else:
        config = prepare_run_dir(out, False, config_from_flags(flags))
    if ctx.get_parameter_source("amp") == ParameterSource.COMMANDLINE:
        where = "the run's, in config.yaml" if resume else "given together"
        check_amp(config.precision, flags["amp"], where)
    data_dirs = [(f"--{k.replace('_', '-')}", config.method_options.get(k))
                 for k in ("data_dir", "val_dir")]  # fmt: skip
    check_out_apart(out, [("--shards", config.shards or None), *data_dirs])
    if config.shards:
        from sslx.datagen.shards import check_shard_files, read_manifest

        check_shard_files(config.shards, read_manifest(config.shards), flags["verify_shards"])
    options = RunOptions(
        workers=flags["workers"],
        device=flags["device"],
        compile=flags["compile"],
        amp=flags["amp"],
        channels_last=flags["channels_last"],
        log_every=max(1, flags["log_every"]),
        checkpoint_every=max(1, flags["checkpoint_every"]),
        max_steps=flags["max_steps"],
        dist_timeout_minutes=flags["dist_timeout_minutes"],
        progress=not flags["quiet"],
    )
    result = run_training(config, out, options, resume=resume)
    p = result.progress
    where = f"epoch {p.epoch + 1}, step {p.global_step}"
    if result.stopped == "interrupted":
        click.echo(
            f"stopped at {where}; checkpoint saved. Continue with: --out {out} --resume", err=True
        )
        ctx.exit(130)
    elif result.stopped == "max_steps":
        click.echo(f"reached --max-steps at {where}; checkpoint saved in {out}", err=True)
    else:
        early = f" (stopped early: {result.stopped})" if result.stopped else ""
        click.echo(f"finished {p.epoch} epoch(s){early}, {p.global_step} steps: "
                   f"{out / 'checkpoint.pt'}", err=True)  # fmt: skip


def config_from_flags(flags: dict) -> TrainConfig:
    from sslx.train.alexnet import ModelConfig
    from sslx.train.config import OptimConfig, TrainConfig
    from sslx.train.crops import CropConfig

    if flags["method"] is None:
        raise InputError("--method is required for a new run")
    method = SPECS[flags["method"]]
    if flags["shards"] is None and method.needs_shards:
        raise InputError("--shards is required for a new run")
    if flags["shards"] is not None and not method.needs_shards:
        raise InputError(f"--method {method.name} reads --data-dir, not --shards")
    d = method.defaults

    def pick(key, default):
        return default if flags[key] is None else flags[key]

    return TrainConfig(
        shards="" if flags["shards"] is None else str(flags["shards"]),
        method=method.name,
        model=ModelConfig(
            input_size=pick("size", d.input_size),
            sobel=pick("sobel", d.sobel),
            classifier_width=flags["classifier_width"],
            conv1_stride=flags["conv1_stride"],
        ).resolved(),
        optim=OptimConfig(
            batch_size=pick("batch_size", d.batch_size),
            epochs=pick("epochs", d.epochs),
            lr=pick("lr", d.lr),
            momentum=pick("momentum", d.momentum),
            weight_decay=pick("weight_decay", d.weight_decay),
            nesterov=pick("nesterov", d.nesterov),
            lr_milestones=d.lr_milestones
            if flags["lr_milestones"] is None
            else parse_milestones(flags["lr_milestones"]),
            lr_gamma=pick("lr_gamma", d.lr_gamma),
        ),
        crop=CropConfig(
            crop_scale_min=flags["crop_scale_min"],
            crop_scale_max=flags["crop_scale_max"],
            aspect_ratio_min=flags["aspect_ratio_min"],
            flip_prob=flags["flip_prob"],
        ),
        method_options={k: pick(k, o.default) for k, o in method.options.items()},
        seed=flags["seed"],
        shuffle_buffer=max(1, flags["shuffle_buffer"]),
        max_bad_fraction=flags["max_bad_fraction"],
        init=None if flags["init"] is None else str(flags["init"]),
        freeze=_layers(flags["freeze"]),
        precision=precision_from_flags(flags["precision"], flags["amp"]),
    )


def _layers(text: str) -> tuple[str, ...]:
    from sslx.train.alexnet import CONV_LAYERS

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CONV_LAYERS]
    if unknown:
        raise InputError(f"--freeze: unknown layer(s) {', '.join(unknown)}; the conv layers are "
                         f"{', '.join(CONV_LAYERS)}")  # fmt: skip
    return tuple(n for n in CONV_LAYERS if n in names)


def _resumed_config(ctx: click.Context, stored: TrainConfig, flags: dict) -> TrainConfig:
    """The stored config; flags equal to it are accepted, real changes refused."""
    if flags["method"] is not None and flags["method"] != stored.method:
        raise InputError(f"this run trains {stored.method}, not {flags['method']}")
    given = {n for n in flags if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}
    fields = {**FIELDS, **{k: f"method_options.{k}" for k in stored.method_options}}
    unknown = sorted(given - set(fields) - RESUMABLE)  # another method's options
    if unknown:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in unknown)
        raise InputError(f"{names} do(es) not apply to this {stored.method} run")
    old = flat(stored.to_dict())
    merged = {**flags, "method": stored.method, "shards": stored.shards or None}
    for name, path in fields.items():  # flags not given take the stored values
        if name not in given:
            merged[name] = as_flag(old[path])
    new = flat(config_from_flags(merged).to_dict())
    changed = [
        f"--{n.replace('_', '-')} cannot change on --resume (the run has "
        f"{as_flag(old[p])}, the command gives {as_flag(new[p])})"
        for n, p in fields.items()
        if n in given and new[p] != old[p] and p not in MOVABLE
    ]
    if changed:
        raise InputError("; ".join(changed))
    config = stored
    options = {**stored.method_options}
    for key in ("data_dir", "val_dir"):
        if key in given and key in options:
            options[key] = flags[key]
    config = replace(config, method_options=options)
    if flags["shards"] is not None:
        config = replace(config, shards=str(flags["shards"]))
    if flags["epochs"] is not None:
        config = config.with_epochs(flags["epochs"])
    return config
