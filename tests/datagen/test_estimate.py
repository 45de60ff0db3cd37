"""The generate forecast, checked against the measured rate once writing has begun."""

from sslx.datagen.estimate import MeasuredRate


def test_the_measured_rate_is_said_once_after_the_wait(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("sslx.datagen.estimate.time.perf_counter", lambda: now[0])
    rate = MeasuredRate(total=100_000, forecast_seconds=6.0, after=20.0)
    now[0] = 10.0
    assert rate.update(12_000) is None  # too early to trust
    now[0] = 25.0
    line = rate.update(25_000)  # 1,000 patches/s: 75,000 left take 75 s
    assert line == "sslx: measured 1,000 patches/s: about 75 s left (the forecast said 6 s in all)"
    now[0] = 60.0
    assert rate.update(60_000) is None  # once
    done = MeasuredRate(total=10, forecast_seconds=1.0, after=0.0)
    assert done.update(10) is None  # nothing left to say it about
