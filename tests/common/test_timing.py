"""The projected time of a run or a probe."""

from sslx.common.timing import MEASURED_STEPS, StepTimer, format_seconds


def test_step_timer_projects_once_after_the_measured_steps():
    timer = StepTimer(steps_per_epoch=100, steps_left=300)
    lines = [timer.tick() for _ in range(20)]
    said = [i for i, line in enumerate(lines) if line]
    assert said == [MEASURED_STEPS]  # step 1 is not measured
    assert "per epoch" in lines[MEASURED_STEPS] and "left for the run" in lines[MEASURED_STEPS]


def test_step_timer_on_a_short_epoch_projects_at_its_last_step():
    timer = StepTimer(steps_per_epoch=3, steps_left=3)
    assert [bool(timer.tick()) for _ in range(3)] == [False, False, True]


def test_step_timer_counts_each_epoch_s_start_up_work(monkeypatch):
    """DeepCluster's clustering step before every epoch is part of the run's time."""
    clock = iter(range(100))
    monkeypatch.setattr("sslx.common.timing.time.perf_counter", lambda: float(next(clock)))
    timer = StepTimer(steps_per_epoch=100, steps_left=300, overhead=600.0, epochs_after=2)
    line = [timer.tick() for _ in range(MEASURED_STEPS + 1)][-1]
    # 1 s per step: 100 s + 600 s per epoch; 294 steps and two clustering steps to go.
    assert "1.00 s/step + 10 min before each epoch: about 12 min per epoch" in line
    assert "25 min left for the run" in line  # 294 + 1200 = 1494 s
    short = StepTimer(steps_per_epoch=10, steps_left=30, overhead=0.2, epochs_after=2)
    assert "before each epoch" not in [short.tick() for _ in range(MEASURED_STEPS + 1)][-1]


def test_the_projection_follows_the_measured_rate(monkeypatch):
    """Steps that become 4x slower after the first projection (a machine that got busy)
    are said once more, with the rate measured over every step so far."""
    times = [0.0]
    for step in range(1, 400):
        times.append(times[-1] + (1.0 if step <= 20 else 4.0))
    clock = iter(times)
    monkeypatch.setattr("sslx.common.timing.time.perf_counter", lambda: next(clock))
    timer = StepTimer(steps_per_epoch=100, steps_left=300)
    lines = [(i, line) for i in range(1, 301) if (line := timer.tick())]
    assert lines[0][0] == MEASURED_STEPS + 1 and "1.00 s/step" in lines[0][1]
    assert "re-projected at the measured" in lines[1][1]
    assert 1 < len(lines) < 10  # said again when it drifts, not at every step
    steady = StepTimer(steps_per_epoch=100, steps_left=300)
    clock = iter(float(t) for t in range(400))
    assert sum(bool(steady.tick()) for _ in range(300)) == 1


def test_format_seconds():
    assert format_seconds(5) == "5 s"
    assert format_seconds(600) == "10 min"
    assert format_seconds(3 * 3600) == "3.0 h"
