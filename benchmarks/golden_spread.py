"""How far the golden training run (tests/test_golden.py) moves between CPU kernels.

The golden test compares a short RotNet run's weights with recorded ones. CPUs differ in
the kernels oneDNN, MKL and ATen pick (AVX2, AVX-512, AMX), and so in rounding. This
script runs the golden run once per kernel setting, each in a fresh process, in float64
(what the test runs) and in float32 (what it ran before), and prints, per setting, the
largest deviation from the first setting in the units of the test's tolerance (a
fingerprint value's distance over the tensor's scale, as `weight_mismatches` measures
it), and whether the exact parts (init, crops, per-step samples and pixels) agree.

    python benchmarks/golden_spread.py            # about 2 minutes on 2 cores
    python benchmarks/golden_spread.py --dtypes float64

The settings restrict what this machine's CPU offers; run it on an AVX2-only machine
too to see a real one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AVX2 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
SETTINGS = {
    "this CPU": {},
    "ATen avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATen default": {"ATEN_CPU_CAPABILITY": "default"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "oneDNN AVX512_CORE": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "MKL AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "MKL compatible": {"MKL_CBWR": "COMPATIBLE"},
    "all AVX2": AVX2,
}


def run(dtype: str, env: dict[str, str], dump: Path) -> dict:
    environ = {**os.environ, **env, "SSLX_GOLDEN_DTYPE": dtype, "SSLX_GOLDEN_DUMP": str(dump)}
    test = "tests/test_golden.py::test_short_rotnet_run_gives_the_recorded_weights"
    argv = [sys.executable, *"-m pytest -q -p no:cacheprovider".split(), test]
    # The test itself may fail (float32 is not what was recorded): only the dump matters.
    subprocess.run(argv, cwd=REPO, env=environ, capture_output=True, text=True, check=False)
    return json.loads(dump.read_text())


def deviation(got: dict, base: dict) -> float:
    """The largest |got - base| of any fingerprint value, over the tensor's scale."""
    worst = 0.0
    for name, want in base.items():
        sumsq = max(1.0, abs(want[1]))
        for i, (a, b) in enumerate(zip(got[name], want, strict=True)):
            unit = sumsq if i == 1 else sumsq**0.5
            worst = max(worst, abs(a - b) / unit)
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dtypes", default="float64,float32", help="comma-separated dtypes")
    args = p.parse_args()
    print(
        f"# {date.today()}, {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"torch {__import__('torch').__version__}"
    )
    print("| dtype | setting | max deviation / scale | init, crops, samples, pixels equal |")
    print("| --- | --- | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in args.dtypes.split(","):
            base = None
            for i, (name, env) in enumerate(SETTINGS.items()):
                got = run(dtype, env, Path(tmp) / f"{dtype}-{i}.json")
                if base is None:
                    base = got
                exact = all(got[k] == base[k] for k in ("crops", "steps"))
                exact = exact and got["init"]["digest"] == base["init"]["digest"]
                dev = deviation(got["weights"], base["weights"])
                print(f"| {dtype} | {name} | {dev:.1e} | {exact} |", flush=True)


if __name__ == "__main__":
    main()
