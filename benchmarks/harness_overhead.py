"""Does the harness measure the runtime and not itself?

For each TFLite file (batch 1, one thread) this prints
  1. harness p50 / bare `interpreter.invoke()` loop p50 on the same interpreter (goal ≤ 1.10);
  2. harness p50 / median of LiteRT's own `litert-benchmark` tool on the same file (goal within
     ±15%). That tool rounds its printed and JSON figures to 0.01 ms, too coarse for models
     that run in a few hundredths of a millisecond, so we run its unmodified measurement loop
     (module `ai_edge_litert.tools.benchmark_litert_model`) in a child process and read the
     median before rounding.

    python benchmarks/harness_overhead.py runs/fashion-mnist-cnn/cpu/baseline__fp32.tflite \
        runs/fashion-mnist-cnn/cpu/baseline__int8.tflite
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, zero_input  # noqa: E402

from toolkit.benchmark.device_bench import BenchSettings, measure_latency  # noqa: E402

LITERT_PROBE = """
import json, statistics, sys
from ai_edge_litert.tools import benchmark_litert_model as tool
medians = []
original = statistics.median
def recording_median(values):
    result = original(values)
    medians.append(result)
    return result
tool.statistics.median = recording_median
sys.argv = ["litert-benchmark", "--model", sys.argv[1], "--num_threads", "1", "--num_runs", sys.argv[2], "--warmup_runs", "200"]
tool.main()
print("EDGESMITH_MEDIAN_MS", json.dumps(medians[-1]))
"""


def bare_loop_p50(path: Path, runs: int) -> float:
    """p50 of invoke() timed one by one in the plainest possible loop."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
    for _ in range(200):
        interpreter.invoke()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        interpreter.invoke()
        samples.append(clock() - start)
    return float(np.median(samples)) / 1e6


def litert_benchmark_median(path: Path, runs: int) -> float:
    completed = subprocess.run(
        [sys.executable, "-c", LITERT_PROBE, str(path), str(runs)], capture_output=True, text=True, timeout=600
    )
    for line in completed.stdout.splitlines():
        if line.startswith("EDGESMITH_MEDIAN_MS"):
            return float(json.loads(line.split(maxsplit=1)[1]))
    raise RuntimeError(f"litert-benchmark failed: {completed.stderr[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating harness/bare/tool rounds; medians reported")
    args = parser.parse_args()
    settings = BenchSettings(runs=args.runs, threads=1, batch=1, budget_s=60)
    for path in args.models:
        sample = zero_input(path)
        harness, bare, tool = [], [], []
        for _ in range(args.rounds):
            harness.append(measure_latency(path, sample, settings).p50)
            bare.append(bare_loop_p50(path, args.runs))
            tool.append(litert_benchmark_median(path, args.runs))
        h, b, t = (float(np.median(values)) for values in (harness, bare, tool))
        print(f"{path}")
        print(f"  harness p50 {h:.4f} ms · bare invoke() loop p50 {b:.4f} ms · litert-benchmark median {t:.4f} ms")
        print(f"  harness / bare loop = {h / b:.3f}  (goal ≤ 1.10: {goal(h / b <= 1.10)})")
        print(f"  harness / litert-benchmark = {h / t:.3f}  (goal 0.85–1.15: {goal(0.85 <= h / t <= 1.15)})")



if __name__ == "__main__":
    main()
