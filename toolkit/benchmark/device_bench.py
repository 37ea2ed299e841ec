"""The benchmark that runs where the model will run: the timing method, memory, as a script.

Self-contained on purpose: numpy, the runtimes (ai-edge-litert, onnxruntime) and its siblings
`device_runners.py` (the runners) and `timing.py` (the statistics), nothing else.
`toolkit.devices.ssh` copies the three files to a Raspberry Pi or a Jetson and runs this one
there, and the local harness imports the very same code, so a latency measured on a device and
one measured here come from one method (warm-up, sessions, percentiles, intervals, all cores,
memory).

    python3 device_bench.py MODEL [--inputs X.npy] [--runs N] [--threads T] [--batch B]
                                  [--delegate gpu|edgetpu] --json
    python3 device_bench.py MODEL --inputs X.npy --predict --json    # scores of every sample
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__:  # imported as part of edgesmith
    from toolkit.benchmark.device_runners import DELEGATES, BenchError, open_runner, predict, runtime, runtime_suffix
    from toolkit.benchmark.timing import Latency, summarize, time_calls, warm_up
else:  # run as a script, here or on a device, next to its sibling modules
    from device_runners import DELEGATES, BenchError, open_runner, predict, runtime, runtime_suffix
    from timing import Latency, summarize, time_calls, warm_up

DEFAULT_BUDGET_S = 5.0
SESSIONS = 10  # freshly loaded model copies per measurement (see timing.summarize)
FIRST_WARMUP_S = 0.2  # lets an idle CPU reach its working clock before anything is timed
MEMORY_RUNS = 20


@dataclass(frozen=True)
class BenchSettings:
    """How latency is measured; stored next to every figure so it can be reproduced."""

    runs: int = 300
    threads: int = 1
    batch: int = 1
    budget_s: float | None = DEFAULT_BUDGET_S  # None: time every run however long it takes

    def to_dict(self) -> dict:
        return {"runs": self.runs, "threads": self.threads, "batch": self.batch, "budget_s": self.budget_s}


def all_cores() -> int:
    """Cores this process may use (respects CPU affinity, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def session_runs(runs: int) -> list[int]:
    """How `runs` timed calls split over sessions: SESSIONS of them (fewer when `runs` is
    smaller, one call each at least), the remainder one extra call each in the first ones."""
    sessions = min(SESSIONS, runs)
    return [runs // sessions + (index < runs % sessions) for index in range(sessions)]


def measure_latency(path: Path, sample: np.ndarray, settings: BenchSettings, delegate: str | None = None) -> Latency:
    """Time `settings.runs` invokes of one prepared input of `settings.batch`, spread over up to
    SESSIONS freshly loaded copies of the model, each warmed up until its timings settle.

    With a `budget_s`, a session of a slow model stops early once it is spent (after
    20 calls at least), so the run count can fall short; without one it is exact.
    """
    batch = np.repeat(sample[:1], settings.batch, axis=0) if len(sample) < settings.batch else sample[: settings.batch]
    counts = session_runs(settings.runs)
    session_budget = None if settings.budget_s is None else settings.budget_s / len(counts)
    sessions, warmup_runs = [], 0
    for session, count in enumerate(counts):
        runner = open_runner(path, settings.threads, delegate)
        runner.set_input(batch)
        warmup_runs += warm_up(runner.invoke, FIRST_WARMUP_S if session == 0 else 0.0)
        sessions.append(time_calls(runner.invoke, count, session_budget))
    return summarize(sessions, warmup_runs)


def benchmark_file(path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                   delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S) -> dict:
    """The full method for one artifact: latency at batch 1 on `threads` and on all cores,
    throughput at `batch` (when the batch dimension is dynamic) and peak memory.

    Every figure carries the settings it was measured with, so rows stay comparable.
    `budget_s=None` times exactly `runs` calls per latency figure however slow the model.
    """
    single = BenchSettings(runs=runs, threads=threads, batch=1, budget_s=budget_s)
    latency = measure_latency(path, sample, single, delegate)
    result = {
        "latency_ms": latency.to_dict(), "latency_method": single.to_dict(), "threads": threads, "batch": 1,
        "runs": latency.runs, "throughput": None, "latency_ms_all_cores": None,
        "peak_memory_mb": peak_memory_mb(path, threads, delegate)["model_mb"],
    }
    cores = all_cores()
    if cores != threads:
        many = BenchSettings(runs=runs, threads=cores, batch=1, budget_s=budget_s)
        result["latency_ms_all_cores"] = {**measure_latency(path, sample, many, delegate).to_dict(), "threads": cores}
    if batch > 1 and open_runner(path, 1, delegate).batch_dynamic:
        batched = BenchSettings(runs=max(20, runs // 10), threads=cores, batch=batch, budget_s=budget_s)
        timing = measure_latency(path, sample, batched, delegate)
        result["throughput"] = {"batch": batch, "threads": cores, "samples_per_s": batch / (timing.p50 / 1000),
                                "p50_ms": timing.p50}
    return result


def peak_memory_mb(path: Path, threads: int = 1, delegate: str | None = None) -> dict[str, float]:
    """{'baseline_rss_mb', 'peak_rss_mb', 'model_mb'} for loading `path` and running it.

    Measured in a fresh process that imports only the runtime: the caller may hold TensorFlow's
    hundreds of MB, which would drown a model's footprint (peak RSS after running minus RSS
    before loading)."""
    command = [sys.executable, str(Path(__file__).resolve()), str(path), "--memory", "--threads", str(threads), "--json"]
    try:
        completed = subprocess.run(command + (["--delegate", delegate] if delegate else []),
                                   capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BenchError(f"measuring the memory of {path} took over 300 s", "check the model runs at all") from None
    result = last_json(completed.stdout)
    if completed.returncode != 0 or "model_mb" not in result:
        last = result.get("error") or (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"memory probe failed for {path}: {last}", "run `edgesmith bench` on it with --debug")
    return result


def last_json(stdout: str) -> dict:
    """The JSON object this script printed last ({} when it printed none: it crashed)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _memory_here(path: Path, threads: int, delegate: str | None) -> dict[str, float]:
    """The child's side of peak_memory_mb: /proc's RSS high-water mark around loading and running."""
    runtime(runtime_suffix(path))  # imports are not the model's
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    before = _status_kb("VmRSS")
    runner = open_runner(path, threads, delegate)
    runner.set_input(np.random.default_rng(0).random((1, *runner.input_shape), dtype=np.float32))
    for _ in range(MEMORY_RUNS):
        runner.invoke()
    peak = _status_kb("VmHWM")
    return {"baseline_rss_mb": before / 1024, "peak_rss_mb": peak / 1024, "model_mb": (peak - before) / 1024}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/self/status has no {field}", "measure memory on Linux")


def _run(args: argparse.Namespace) -> dict:
    if not args.model.is_file():
        raise BenchError(f"model file {args.model} does not exist", "check the path")
    if args.memory:
        return _memory_here(args.model, args.threads, args.delegate)
    x = None if args.inputs is None else np.load(args.inputs).astype(np.float32)
    if args.predict:
        if x is None:
            raise BenchError("--predict needs the samples", "pass --inputs X.npy")
        buffer = io.BytesIO()
        np.save(buffer, predict(open_runner(args.model, all_cores(), args.delegate), x))
        return {"scores_npy": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if x is None:
        shape = open_runner(args.model, 1, args.delegate).input_shape
        x = np.random.default_rng(0).random((args.batch, *shape), dtype=np.float32)
    budget_s = None if args.exact else DEFAULT_BUDGET_S
    return benchmark_file(args.model, x, args.runs, args.threads, args.batch, args.delegate, budget_s)


def main(argv: list[str] | None = None) -> int:
    """The script: one JSON object on stdout; a fixable problem is {"error", "fix"} and exit 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--inputs", type=Path, help=".npy samples shaped like the model input (default: random)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="batch for the throughput figure")
    parser.add_argument("--delegate", choices=sorted(DELEGATES), help="load this LiteRT delegate (or fail)")
    parser.add_argument("--exact", action="store_true", help="time exactly --runs calls, with no time budget")
    parser.add_argument("--predict", action="store_true", help="the scores of every --inputs sample, as base64 .npy")
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)  # peak_memory_mb's child
    parser.add_argument("--json", action="store_true", help="one line of JSON (default: indented)")
    args = parser.parse_args(argv)
    try:
        result, code = _run(args), 0
    except BenchError as exc:
        result, code = {"error": exc.problem, "fix": exc.fix}, 2
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
