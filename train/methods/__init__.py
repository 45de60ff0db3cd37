"""Pretraining methods, registered by name in `METHODS`."""

from sslx.train.methods import bigan, deepcluster, rotnet, supervised  # noqa: F401  (register)
from sslx.train.methods.base import (
    METHODS,
    EpochContext,
    Method,
    MethodOption,
    OptimDefaults,
    StepOutput,
    register,
)

__all__ = [
    "METHODS",
    "EpochContext",
    "Method",
    "MethodOption",
    "OptimDefaults",
    "StepOutput",
    "register",
]
