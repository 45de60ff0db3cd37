"""SimCLR's spec: tell each view's partner apart from the batch's other views (docs/modern.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.settings import declare
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext
from sslx.train.ssl.options import HIDDEN_DIM, PROJECTION_DIM


@dataclass(frozen=True)
class SimCLROptions:
    # google-research/simclr run.py: --temperature 0.1, --proj_out_dim 128; the hidden
    # layer is as wide as the representation (model_util.projection_head).
    temperature: float = declare(
        0.1,
        help="NT-Xent temperature (SimCLR, DINO's student has its own).",
        type=float,
        low=0,
        open_low=True,
    )
    projection_dim: int = PROJECTION_DIM.field(128)
    hidden_dim: int = HIDDEN_DIM.field(0)

    def __post_init__(self) -> None:
        settings.check(self)


SPEC = MethodSpec(
    name="simclr",
    summary="tell each view's partner apart from the batch's other views",
    # Chen et al. 2020, section 3 and appendix B.1; google-research/simclr run.py:
    # batch 4096, LARS, lr 0.3 x batch / 256, weight decay 1e-6 (biases and BatchNorm
    # excluded), 10 warm-up epochs then cosine decay to 0, 100 epochs.
    defaults=OptimDefaults(
        batch_size=4096,
        epochs=100,
        lr=0.3,
        momentum=0.9,
        weight_decay=1e-6,
        optimizer="lars",
        lr_schedule="cosine",
        warmup_epochs=10,
        lr_scaling="linear",
        reference="google-research/simclr run.py, data_util.py; Chen et al. 2020 appendix B",
    ),
    pretext=Pretext("contrastive_accuracy"),
    plugin="SimCLR",
    docs="docs/modern.md",
    options=SimCLROptions,
)
