"""Pretraining methods, registered by name in `METHODS`.

`specs` (their names, summaries, defaults and options) is torch-free; the plug-ins and
the registry are imported on first use of the names below, so that `sslx train --help`
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from sslx.train.methods.specs import SPECS, MethodOption, MethodSpec, OptimDefaults

_BASE = ("METHODS", "EpochContext", "Method", "StepOutput", "register")

__all__ = ["SPECS", "MethodOption", "MethodSpec", "OptimDefaults", *_BASE]


def __getattr__(name: str) -> Any:
    if name in _BASE:
        for module in ("bigan", "deepcluster", "rotnet", "supervised"):  # each registers itself
            importlib.import_module(f"sslx.train.methods.{module}")
        return getattr(importlib.import_module("sslx.train.methods.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
