"""The settings every command shares: seed, output, loader workers, device, progress.

Each is declared once here (`sslx.settings.Setting`); a command binds it with
`settings.option(key, SETTING, note=...)`, adding what it means there. Settings of one
config live on that config's fields; shared blocks live beside the code they drive (the
optimiser in `sslx.common.optim`, RandomResizedCrop in `sslx.common.sampling`, labelled
data in `sslx.common.datasets`). Torch-free, so building a command's help stays fast.
"""

from __future__ import annotations

from pathlib import Path

from sslx.common.device import DEVICES
from sslx.settings import FREE, Setting

SEED = Setting(
    "Seed: every random draw is a pure function of it and of what the draw is for.",
    int,
    low=0,
)
OUT = Setting("Where the command writes.", Path, unit="PATH", resume=FREE)
WORKERS = Setting(
    "Worker processes that decode or render; the result is the same for any value.",
    int,
    unit="N",
    low=0,
    resume=FREE,
)
DEVICE = Setting(
    "Where to compute: auto is CUDA when a GPU is visible, else CPU.",
    str,
    choices=DEVICES,
    resume=FREE,
)
QUIET = Setting("No progress bars.", bool, switch=False, resume=FREE)
