"""Measure what learners feel: whole-process grading time, lab starts, restores.

Runs against its own local AWS (a temporary state folder and a free port), so
it never touches your work. Usage: ``python benchmarks/grading.py [--runs N]``.
Targets (BLUEPRINT): one lab under 1 s, all labs under 3 s, a lab start or a
restore under 2 s.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time

from isolated import use_own_local_aws  # benchmarks/ is the script's folder


def _time(cmd: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return samples


def _row(name: str, samples: list[float], target: float | None = None) -> str:
    med = statistics.median(samples)
    verdict = "" if target is None else ("  ok" if med < target else f"  over {target:g} s")
    return f"{name:<42} median {med:6.3f} s   min {min(samples):6.3f} s   max {max(samples):6.3f} s{verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    use_own_local_aws("bench")
    from labkit import localaws
    from labkit.authoring import notebooks

    py = sys.executable
    localaws.up()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the finished course, so every check has work to do
            for lab in notebooks.labs():
                notebooks.run_solution(lab)
        localaws.save("bench-end", force=True)
        rows = [
            _row("python -c 'import boto3' (the floor)", _time([py, "-c", "import boto3"], args.runs)),
            _row("python -m checks 01", _time([py, "-m", "checks", "01"], args.runs), 1.0),
            _row("python -m checks 02 (calls through the gateway)", _time([py, "-m", "checks", "02"], args.runs), 1.0),
            _row("python -m checks 03 (runs the function)", _time([py, "-m", "checks", "03"], args.runs), 1.0),
            _row("python -m checks 04 (max: the first, sandbox)", _time([py, "-m", "checks", "04"], args.runs), 1.0),
            _row("python -m checks all", _time([py, "-m", "checks", "all"], args.runs), 3.0),
            _row("python -m labkit start 01", _time([py, "-m", "labkit", "start", "01"], max(3, args.runs // 2)), 2.0),
            _row("python -m labkit start 03", _time([py, "-m", "labkit", "start", "03"], max(3, args.runs // 2)), 2.0),
            _row("python -m labkit start 04", _time([py, "-m", "labkit", "start", "04"], max(3, args.runs // 2)), 2.0),
            _row("python -m labkit restore bench-end", _time([py, "-m", "labkit", "restore", "bench-end"],
                                                            max(3, args.runs // 2)), 2.0),
        ]
    finally:
        localaws.down()
    print(f"{args.runs} runs each, on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
