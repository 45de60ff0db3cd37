"""Command-line options that several `sslx` commands share, as click decorators.

Names, types and defaults are fixed here; each command passes its own help text where
the meaning differs. Torch-free, so building a command's help stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sslx.errors import InputError

DEVICES = ("auto", "cpu", "cuda")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def device_option(help: str) -> Decorator:
    """`--device auto|cpu|cuda`; auto means CUDA when visible, else CPU."""
    return click.option("--device", type=click.Choice(DEVICES), default="auto", help=help)


def workers_option(help: str, default: Any, show_default: bool | None = None) -> Decorator:
    """`--workers N`: processes that decode or render; never changes a result."""
    return click.option(
        "--workers", type=int, default=default, help=help, show_default=show_default
    )


def seed_option(help: str) -> Decorator:
    return click.option("--seed", type=int, default=0, help=help)


def out_option(help: str, *, required: bool = False, default: Path | None = None) -> Decorator:
    """`--out PATH`: the folder (or file) a command writes."""
    return click.option(
        "--out", type=click.Path(path_type=Path), required=required, default=default, help=help
    )


def quiet_option(help: str = "No progress bar.") -> Decorator:
    return click.option("--quiet", is_flag=True, help=help)


def parse_milestones(text: str) -> tuple[int, ...]:
    """`--lr-milestones 15,30,45` -> (15, 30, 45)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"--lr-milestones must be comma-separated epochs (got {text!r})") from None
