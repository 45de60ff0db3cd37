"""train/optimizers.py: the cosine schedule with a fractional warm-up."""

from __future__ import annotations

import pytest
import torch

from sslx.errors import InputError
from sslx.train.config import TrainConfig
from sslx.train.optimizers import Schedule


def _lrs(warmup_epochs: float, steps_per_epoch: int, epochs: int) -> list[float]:
    config = TrainConfig.for_method(
        "simclr", shards="S", batch_size=256, lr=0.4, epochs=epochs, warmup_epochs=warmup_epochs
    )
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule, lrs = Schedule(sgd, config.optim, steps_per_epoch), []
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
    config = TrainConfig.for_method("simclr", shards="S", warmup_epochs=0.25)
    assert TrainConfig.from_dict(config.to_dict()).optim.warmup_epochs == 0.25
    with pytest.raises(InputError, match="--warmup-epochs must be"):
        TrainConfig.for_method("simclr", shards="S", warmup_epochs=-0.5)
