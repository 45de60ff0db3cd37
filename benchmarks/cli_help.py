"""Benchmark how long `sslx ... --help` takes: a fresh interpreter per call, as a user sees it.

Each help command runs `--repeats` times in a subprocess (`python -m sslx.cli ...`),
interleaved with a bare `python -c pass` start-up; the table gives the median seconds
per command and its ratio to the bare start-up.

    python benchmarks/cli_help.py
    python benchmarks/cli_help.py --repeats 11
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date

COMMANDS = [[], ["generate"], ["train"], ["probe"], ["viz"]]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=7, help="runs per command (median reported)")
    return p.parse_args()


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    cases = {"python -c pass": [sys.executable, "-c", "pass"]}
    for command in COMMANDS:
        cases[" ".join(["sslx", *command, "--help"])] = [
            sys.executable,
            "-m",
            "sslx.cli",
            *command,
            "--help",
        ]
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):  # interleaved, so load on the machine hits all alike
        for name, argv in cases.items():
            times[name].append(seconds(argv))
    medians = {name: statistics.median(t) for name, t in times.items()}
    bare = medians["python -c pass"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"# {date.today()}, {platform.machine()}, {cores} cores, Python "
        f"{platform.python_version()}, median of {args.repeats} runs"
    )
    print("| command | median s | / bare python start |")
    print("| --- | ---: | ---: |")
    for name, median in medians.items():
        print(f"| `{name}` | {median:.3f} | {median / bare:.1f} |")


if __name__ == "__main__":
    main()
