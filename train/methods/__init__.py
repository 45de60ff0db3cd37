"""Pretraining methods: one folder each, registered by one line in `REGISTERED`.

A method's folder holds `spec.py` (torch-free: its `SPEC`, with name, summary, paper
defaults, options, pretext measure and docs, see `spec.MethodSpec`) and `method.py` (its
`Method` plug-in, see `base.py`), beside any helpers of its own. `SPECS` is read
without importing torch, so `sslx train --help` stays fast; `plugin(name)` imports a
method's `method.py` when a run needs its class. docs/architecture.md shows how to add one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sslx.train.methods.spec import MethodSpec

if TYPE_CHECKING:
    from sslx.train.methods.base import Method

# One line per method (the order of their options in `sslx train --help`).
REGISTERED = ("bigan", "byol", "deepcluster", "dino", "rotnet", "simclr", "simsiam", "supervised")

SPECS: dict[str, MethodSpec] = {
    name: importlib.import_module(f"sslx.train.methods.{name}.spec").SPEC for name in REGISTERED
}


def plugin(name: str) -> type[Method]:
    """The `Method` class of a registered method (imports torch)."""
    module = importlib.import_module(f"sslx.train.methods.{name}.method")
    return getattr(module, SPECS[name].plugin)
