"""The GPU check (benchmarks/gpu_check.sh) in its CPU mode: every step runs, every method
trains, and the summary holds the figures, so that the GPU minutes measure, not debug."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sslx.train.methods import SPECS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # gpu.py --quick on a CPU: about 4 minutes on 2 busy cores
def test_the_gpu_check_runs_every_step_in_its_cpu_mode(tmp_path):
    env = {**os.environ, "GPUCHECK_CPU": "1", "PY": sys.executable}
    env |= {"OUT": str(tmp_path / "out"), "GPUCHECK_WORK": str(tmp_path / "work")}
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "| pytest -m gpu | ok" in summary and "| benchmarks/gpu.py | ok" in summary, summary
    assert "## Failures" not in summary, summary
    report = (tmp_path / "out" / "gpu-report.md").read_text()
    trained = {line.split("|")[1].strip() for line in report.splitlines() if "| 16 | no |" in line}
    assert trained == {*SPECS, "rotnet decode gpu", "simclr decode gpu"}, report
    for section in ("## sslx generate", "clustering step", "## sslx probe"):
        assert section in report, report
