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


def test_format_seconds():
    assert format_seconds(5) == "5 s"
    assert format_seconds(600) == "10 min"
    assert format_seconds(3 * 3600) == "3.0 h"
