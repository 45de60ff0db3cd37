"""train/optimizers.py: the cosine schedule with a fractional warm-up."""

from __future__ import annotations

import pytest
import torch

from sslx.common.optim import OptimConfig
from sslx.train.optimizers import Schedule


def _lrs(warmup_epochs: float, steps_per_epoch: int, epochs: int) -> list[float]:
    optim = OptimConfig(
        batch_size=256,
        epochs=epochs,
        lr=0.4,
        momentum=0.9,
        weight_decay=0.0,
        nesterov=False,
        lr_milestones=(),
        lr_gamma=0.1,
        lr_schedule="cosine",
        warmup_epochs=warmup_epochs,
    )
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule, lrs = Schedule(sgd, optim, steps_per_epoch), []
    for step in range(epochs * steps_per_epoch):
        schedule.before_step(step)
        lrs.append(sgd.param_groups[0]["lr"])
    return lrs


def test_a_quarter_epoch_of_warm_up_is_a_quarter_of_the_steps():
    lrs = _lrs(0.25, steps_per_epoch=8, epochs=1)  # 2 warm-up steps, then 6 of cosine
    assert lrs[:3] == pytest.approx([0.0, 0.4, 0.4])
    assert lrs[3] < 0.4 and lrs[-1] < lrs[3]
    assert _lrs(1, 8, 4)[:9] == pytest.approx(_lrs(1.0, 8, 4)[:9])  # whole epochs as before


def test_a_fractional_warm_up_is_stored_and_refused_below_zero():
    with pytest.raises(Exception, match="warmup-epochs"):
        OptimConfig(
            batch_size=1,
            epochs=1,
            lr=0.1,
            momentum=0.9,
            weight_decay=0.0,
            nesterov=False,
            lr_milestones=(),
            lr_gamma=0.1,
            warmup_epochs=-0.5,
        )
