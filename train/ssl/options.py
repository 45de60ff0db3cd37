"""Settings that several multi-view methods declare (torch-free): one declaration each, a
field of each method's options dataclass with that method's paper default."""

from __future__ import annotations

from sslx.settings import Setting

PROJECTION_DIM = Setting("Output width of the projection head.", int, unit="WIDTH", low=1)
HIDDEN_DIM = Setting(
    "Hidden width of the projection (and prediction) MLP; 0: the backbone's embedding width.",
    int,
    unit="WIDTH",
    low=0,
)
TEACHER_MOMENTUM = Setting(
    "Base EMA momentum of the target (teacher) network, raised to 1 on a cosine over the run.",
    float,
    low=0,
    high=1,
)
