"""`sslx train`: flags -> TrainConfig + RunOptions -> `loop.train`.

Every option is made from a declaration: the fields of `TrainConfig` and `RunOptions`
(`sslx.train.config`), each method's options (its spec) and the three command settings
below. Torch-free at import, so `sslx train --help` is fast; the modules that import
torch are imported when the command runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from sslx import settings
from sslx.errors import InputError, check_out_apart
from sslx.options import OUT
from sslx.settings import FREE, Setting
from sslx.train.config import RunOptions, TrainConfig
from sslx.train.methods import SPECS
from sslx.train.methods.spec import OptimDefaults
from sslx.train.metrics import last_logged
from sslx.train.precision import check_amp, precision_from_flags
from sslx.train.resume import check_not_finished, inputs, resumed_config

RESUME = Setting("Continue the run in --out from its checkpoint.", bool, switch=False, resume=FREE)
VERIFY_SHARDS = Setting(
    "Check every shard's sha256 against the manifest before training (reads all shards "
    "once); their sizes are always checked.",
    bool,
    switch=False,
    resume=FREE,
)
# The settings whose default is the method's, from its paper (`OptimDefaults`).
BY_METHOD = tuple(f.name for f in fields(OptimDefaults) if f.name != "reference")
# How a run executes: never part of config.yaml, free to change on --resume.
FREE_KEYS = {"out", "resume", "verify_shards", *settings.declared(RunOptions)}


def _method_text(key: str) -> str:
    """E.g. "the method's: 64 for bigan, 224 for the others"."""
    setting = settings.declared(TrainConfig)[key].setting
    values = {n: str(settings.spelled(setting, s.defaults.values()[key])) for n, s in SPECS.items()}
    if any(len(v) > 12 for v in values.values()):
        return "the method's"
    common = Counter(values.values()).most_common(1)[0][0]
    rest = [f"{v} for {n}" for n, v in values.items() if v != common]
    others = "the others" if rest else "all"
    return "the method's: " + ", ".join([*rest, f"{common} for {others}"])


def _method_options(command: Any) -> Any:
    """Each method's own options (e.g. DeepCluster's --clusters), prefixed with the names of
    the methods that have them; one several methods share shows each one's default."""
    seen: dict[str, Setting] = {}
    owners: dict[str, dict[str, Any]] = {}  # key -> {method: its default}
    for name, spec in SPECS.items():
        for key, d in settings.declared(spec.options).items():
            if key in seen and seen[key] is not d.setting:
                raise TypeError(f"--{key} is declared by two methods with other meanings")
            seen[key] = d.setting
            owners.setdefault(key, {})[name] = settings.spelled(d.setting, d.default)
    decorators = []
    for key, defaults in owners.items():
        values = set(map(str, defaults.values()))
        if len(values) > 1:
            text = ", ".join(f"{v} for {n}" for n, v in defaults.items())
        else:
            text = None if next(iter(values)) in ("", "None") else next(iter(values))
        prefix = f"[{', '.join(defaults)}]"
        decorators.append(settings.option(key, seen[key], default_text=text, prefix=prefix))
    for decorate in reversed(decorators):  # click lists options in reverse order of decoration
        command = decorate(command)
    return command


def _methods_epilog() -> str:
    width = max(map(len, SPECS))
    lines = [f"  {name:<{width}}  {spec.summary}" for name, spec in sorted(SPECS.items())]
    return "\b\nMethods:\n" + "\n".join(lines)


@click.command(epilog=_methods_epilog())
@settings.option(
    "out",
    OUT,
    note="The run folder: config.yaml, metrics.jsonl, TensorBoard events, checkpoint.pt.",
    default_text="runs/METHOD",
)
@settings.option("resume", RESUME)
@settings.options(
    TrainConfig,
    defaults={**dict.fromkeys(BY_METHOD), "precision": None},
    default_text={**{k: _method_text(k) for k in BY_METHOD}, "precision": "auto"},
)
@settings.options(
    RunOptions,
    notes={"workers": "Loader processes per rank (0: in the main process)."},
    default_text={
        "workers": "1 on CPU; on a GPU the usable cores per local GPU, less one",
        "channels_last": "on CUDA only",
    },
)
@settings.option("verify_shards", VERIFY_SHARDS)
@_method_options
@click.pass_context
def train(ctx: click.Context, **flags: Any) -> None:
    """Pretrain AlexNet on patch shards with a self-supervised method (or, with --method
    supervised, train it with labels for the reference row)."""
    from sslx.train.loop import train as run_training
    from sslx.train.state import prepare_run_dir

    if flags["out"] is None:
        if flags["resume"]:
            raise InputError("--out is required with --resume (the run folder)")
        if flags["method"] is None:
            raise InputError("--method is required (and --shards, or --data-dir)")
        flags["out"] = Path("runs") / flags["method"]
    out, resume = flags["out"], flags["resume"]
    given = {k for k in flags if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    options = settings.build(RunOptions, flags)
    if resume:
        config = resumed_config(prepare_run_dir(out, True), {k: flags[k] for k in given}, FREE_KEYS)
        check_not_finished(out, config)
    else:
        config = prepare_run_dir(out, False, new_config(flags, given))
    if "amp" in given:
        where = "the run's, in config.yaml" if resume else "given together"
        check_amp(config.precision, flags["amp"], where)
    check_out_apart(out, inputs(config))
    if config.shards:
        from sslx.datagen.shards import check_shard_files, read_manifest

        check_shard_files(config.shards, read_manifest(config.shards), flags["verify_shards"])
    result = run_training(config, out, options, resume=resume)
    _report(ctx, result, out, config.method)


def new_config(flags: dict[str, Any], given: set[str]) -> TrainConfig:
    """A new run's config: the method's paper defaults, changed by the flags given."""
    method = flags["method"]
    if method is None:
        raise InputError("--method is required for a new run")
    spec = SPECS[method]
    if flags["shards"] is None and spec.needs_shards:
        raise InputError("--shards is required for a new run")
    own = settings.declared(spec.options)
    foreign = sorted(k for k in given if k not in own and k in _all_method_options())
    if foreign:
        names = ", ".join(f"--{k.replace('_', '-')}" for k in foreign)
        raise InputError(f"{names} do(es) not apply to --method {method}")
    values = {k: flags[k] for k in (*settings.declared(TrainConfig), *own) if k != "method"}
    values["precision"] = precision_from_flags(flags["precision"], flags["amp"])
    return TrainConfig.for_method(method, **values)


def _all_method_options() -> set[str]:
    return {k for spec in SPECS.values() for k in settings.declared(spec.options)}


def _report(ctx: click.Context, result: Any, out: Path, method: str) -> None:
    p = result.progress
    where = f"epoch {p.epoch + 1}, step {p.global_step}"
    if result.stopped == "interrupted":
        click.echo(
            f"stopped at {where}; checkpoint saved. Continue with: sslx train --out {out} --resume",
            err=True,
        )
        ctx.exit(130)
    elif result.stopped == "max_steps":
        click.echo(f"reached --max-steps at {where}; checkpoint saved in {out}", err=True)
    else:
        early = f" (stopped early: {result.stopped})" if result.stopped else ""
        checkpoint = out / "checkpoint.pt"
        click.echo(
            f"finished {p.epoch} epoch(s){early}, {p.global_step} steps: {checkpoint}", err=True
        )
        pretext = SPECS[method].pretext  # the number that says whether the run learned
        value = last_logged(out / "metrics.jsonl", pretext.metric)
        if value is not None:
            chance = "" if pretext.chance is None else f" (chance: {pretext.chance:g})"
            click.echo(f"last logged {pretext.metric}: {value:.3f}{chance}", err=True)
