"""The probe's pictures say what they show: dataset, split, networks and chance."""

import matplotlib.pyplot as plt

from sslx.probe.report import accuracy_figure, plot_accuracy
from sslx.probe.run import ProbeResult

LAYERS = ("conv1", "conv2")
DATA = {"dataset": "cifar10", "val": "held out 0.1 per class, split seed 0", "classes": 10}


def _result(name: str, top1: tuple[float, float]) -> ProbeResult:
    return ProbeResult(
        name=name,
        input_size=64,
        dims=dict.fromkeys(LAYERS, 9600),
        top1=dict(zip(LAYERS, top1, strict=True)),
        top5=dict(zip(LAYERS, top1, strict=True)),
        train_loss={key: [1.0] for key in LAYERS},
    )


def test_accuracy_plot_is_titled_starts_at_zero_and_draws_chance(tmp_path):
    results = [_result("rotnet64", (0.58, 0.613)), _result("random", (0.598, 0.60))]
    fig = accuracy_figure(results, DATA)
    ax = fig.axes[0]
    assert "cifar10" in ax.get_title() and "held out 0.1 per class" in ax.get_title()
    assert ax.get_ylim() == (0, 70)  # not 55..61: a 1-point gap looks like one point
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["rotnet64", "random", "chance (10.0%)"]
    chance = next(line for line in ax.get_lines() if line.get_label().startswith("chance"))
    assert set(chance.get_ydata()) == {10.0}
    plt.close(fig)
    plot_accuracy(results, tmp_path / "accuracy.png", DATA)
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
