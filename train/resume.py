"""Resuming a run: its stored config against the command's flags (torch-free).

The rules come from the settings' declarations (`sslx.settings`): a "fixed" setting
must keep its stored value, a "free" one (epochs, workers, device...) may change, and a
"movable" one (a data location) may change because the checkpoint's data fingerprint
checks that it still holds the same data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sslx import settings
from sslx.errors import InputError
from sslx.settings import FIXED, Declared
from sslx.train.config import TrainConfig
from sslx.train.methods import SPECS


def run_settings(method: str) -> dict[str, Declared]:
    """Every result-shaping setting of a `method` run by key: TrainConfig's and the
    method's options (paths as in config.yaml)."""
    options = {
        k: Declared(d.key, f"method_options.{d.path}", d.setting, d.default)
        for k, d in settings.declared(SPECS[method].options).items()
    }
    return {**settings.declared(TrainConfig), **options}


def inputs(config: TrainConfig) -> list[tuple[str, Any]]:
    """The data locations a run reads (its movable settings), as (flag, value)."""
    return settings.locations(config) + settings.locations(config.method_options)


def resumed_config(stored: TrainConfig, given: dict[str, Any], free: set[str]) -> TrainConfig:
    """The stored config with the command's `given` flag values (by key) applied: fixed
    settings may only repeat their stored value, `free` keys (how a run executes) and
    free or movable settings may change; another method's options are refused."""
    method = given.get("method")
    if method is not None and method != stored.method:
        raise InputError(f"this run trains {stored.method}, not {method}")
    declared = run_settings(stored.method)
    unknown = sorted(set(given) - set(declared) - free)
    if unknown:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in unknown)
        raise InputError(f"{names} do(es) not apply to this {stored.method} run")
    old = {**settings.flat(stored), **settings.flat(stored.method_options)}
    changes = {k: v for k, v in given.items() if k in declared and v is not None}
    values = {k: v for k, v in {**old, **changes}.items() if k != "method"}
    config = TrainConfig.for_method(stored.method, **values)
    new = {**settings.flat(config), **settings.flat(config.method_options)}
    changed = [
        f"{d.flag} cannot change on --resume (the run has {settings.spelled(d.setting, old[k])}, "
        f"the command gives {settings.spelled(d.setting, new[k])})"
        for k, d in declared.items()
        if k in changes and d.setting.resume == FIXED and new[k] != old[k]
    ]
    if changed:
        raise InputError("; ".join(changed))
    return config


def check_not_finished(out: Path, config: TrainConfig) -> None:
    """Resuming a finished run needs a larger --epochs, and one that an epoch hook stopped
    (--patience) is final; say so instead of doing nothing."""
    from sslx.train.checkpoint import load_checkpoint

    progress = load_checkpoint(out).get("progress", {})
    done = progress.get("epoch", 0)
    if progress.get("finished") and progress.get("stopped"):
        raise InputError(
            f"the run in {out} is finished: --{progress['stopped']} stopped it after {done} "
            "epoch(s) (the best epoch is in its metrics.jsonl); it cannot be continued"
        )
    if progress.get("finished") and config.optim.epochs <= done:
        raise InputError(
            f"the run in {out} is finished ({done} epoch(s)); to train longer give "
            f"--resume --epochs N with N > {done}"
        )
    if config.optim.epochs < done:
        raise InputError(
            f"the run in {out} has already trained {done} epoch(s); "
            f"--epochs {config.optim.epochs} is fewer"
        )
