"""What a run prints while it runs: start-up summary, slow-CPU hint, projection, postfix."""

import torch

from sslx.train.model import ModelConfig
from sslx.train.report import LivePostfix, milestone_note, slow_cpu_hint, startup_summary

CPU = torch.device("cpu")


def test_startup_summary_names_every_setting():
    line = startup_summary(
        device=CPU, world_size=2, batch_size=64, workers=1, steps=10, epochs=3, samples=1280
    )
    for part in (
        "device cpu",
        "torch threads",
        "2 rank(s)",
        "global batch 64",
        "(32 per rank)",
        "1 loader worker(s)",
        "10 steps/epoch",
        "3 epoch(s)",
        "1280 samples",
    ):
        assert part in line, (part, line)


def test_slow_cpu_hint_only_for_slow_settings():
    assert "--conv1-stride 4" in slow_cpu_hint(CPU, ModelConfig(input_size=224))
    assert "5x faster" in slow_cpu_hint(CPU, ModelConfig(input_size=64))
    assert (
        slow_cpu_hint(CPU, ModelConfig(input_size=64, conv1_stride=4, classifier_width=512)) is None
    )
    assert slow_cpu_hint(CPU, ModelConfig(input_size=32)) is None
    assert slow_cpu_hint(torch.device("cuda"), ModelConfig(input_size=224)) is None


def test_milestone_note_names_only_milestones_past_the_run():
    assert milestone_note((10, 20), 30) is None
    note = milestone_note((1, 30, 45), 30)
    assert "30,45" in note and " 1," not in note


class _Bar:
    disable = False

    def __init__(self):
        self.postfixes = []

    def set_postfix(self, **kw):
        self.postfixes.append(kw)


def test_live_postfix_updates_every_step_on_cpu_and_sparsely_on_cuda():
    bar = _Bar()
    live = LivePostfix(bar, CPU)
    live.update(torch.tensor(1.5), 16)
    assert bar.postfixes and bar.postfixes[0]["loss"] == "1.500"
    cuda_bar = _Bar()
    live = LivePostfix(cuda_bar, torch.device("cuda"))
    for _ in range(3):
        live.update(torch.tensor(1.0), 16)
    assert cuda_bar.postfixes == []
