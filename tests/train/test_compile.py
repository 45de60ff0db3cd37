"""`--compile` trains as eager steps do: on CPU (a slow test) and on CUDA (a gpu test)."""

import json

import pytest
import torch

from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import build_method, train

DEVICES = [pytest.param("cpu", marks=pytest.mark.slow), pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_steps_train_like_eager_ones(device, shards, tmp_path, monkeypatch):
    """Three RotNet steps at 224 px in fp32 (no TF32), with dropout off: inductor draws its
    own dropout masks, so with it the two runs differ by design. The compiled update of
    the weights is the eager one to within 20% of its size: measured 4.9% on CPU (the
    gradient near chance is a small difference of large terms, which magnifies kernel
    rounding). A compiled step that did nothing, or stepped twice as far, is 100% off.
    The losses agree to 1e-3 (measured 8e-6)."""
    monkeypatch.setattr(torch.nn.Dropout, "forward", lambda self, x: x)
    config = TrainConfig.for_method(
        "rotnet",
        shards=str(shards),
        batch_size=16,
        epochs=1,
        lr=0.05,
        input_size=224,
        classifier_width=256,
        precision="fp32",
    )
    start = [p.detach().clone() for p in build_method(config, from_init=True).parameters()]
    updates, losses = [], []
    for name, compile_ in (("eager", False), ("compiled", True)):
        options = RunOptions(
            device=device, workers=0, max_steps=3, log_every=1, quiet=True, compile=compile_
        )
        result = train(config, tmp_path / name, options)
        assert result.stopped == "max_steps"
        moved = zip(result.method.parameters(), start, strict=True)
        updates.append(torch.cat([(p.detach().cpu() - s).flatten() for p, s in moved]))
        records = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        losses.append([r["loss"] for r in map(json.loads, records) if "event" not in r])
    eager, compiled = updates
    assert (compiled - eager).norm() < 0.2 * eager.norm(), (compiled - eager).norm() / eager.norm()
    assert len(losses[0]) == 3 and losses[1] == pytest.approx(losses[0], rel=1e-3), losses
