"""How much does the stage cache save? Runs the default experiment into a fresh folder, then the
same command again, and prints both wall times and the ratio (goal: re-run ≤ 10% of the first).

    python benchmarks/cache_speedup.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time


def timed_run(output: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toolkit", "run", "--output", output], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgesmith-cache-") as output:
        first = timed_run(output)
        second = timed_run(output)
    ratio = second / first
    print(f"first run {first:.1f} s, cached re-run {second:.1f} s: ratio {ratio:.3f} "
          f"(goal ≤ 0.10: {'met' if ratio <= 0.10 else 'NOT met'})")


if __name__ == "__main__":
    main()
