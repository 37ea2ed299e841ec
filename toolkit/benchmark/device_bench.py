"""The benchmark that runs where the model will run: the timing method, memory, as a script.

Self-contained on purpose: numpy, the runtimes (ai-edge-litert, onnxruntime) and its siblings
`device_runners.py` (the runners) and `timing.py` (the statistics), nothing else.
`toolkit.devices.ssh` copies the three files to a Raspberry Pi or a Jetson and runs this one
there, and the local harness imports the very same code, so a latency measured on a device and
one measured here come from one method (warm-up, sessions, percentiles, intervals, all cores,
memory).

    python3 device_bench.py MODEL [--inputs X.npy] [--runs N] [--threads T] [--batch B]
                                  [--delegate gpu|edgetpu] [--target-width W --budget-s S] --json
    python3 device_bench.py MODEL --inputs X.npy --predict --json    # scores of every sample
"""
from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

if __package__:  # imported as part of edgesmith
    from toolkit.benchmark.device_runners import DELEGATES, BenchError, open_runner, predict, runtime, runtime_suffix
    from toolkit.benchmark.timing import Latency, Narrowing, summarize, time_calls, warm_up
else:  # run as a script, here or on a device, next to its sibling modules
    from device_runners import DELEGATES, BenchError, open_runner, predict, runtime, runtime_suffix
    from timing import Latency, Narrowing, summarize, time_calls, warm_up

DEFAULT_BUDGET_S = 5.0
SESSIONS = 10  # freshly loaded model copies per measurement (see timing.summarize)
SESSION_BUDGET_S = DEFAULT_BUDGET_S / SESSIONS  # the adaptive plan's cap on one session's timed calls
FIRST_WARMUP_S = 0.2  # lets an idle CPU reach its working clock before anything is timed
MEMORY_RUNS = 20


@dataclass(frozen=True)
class BenchSettings:
    """How latency is measured; stored next to every figure so it can be reproduced.

    Fixed plan (`target_width` 0): `runs` calls over SESSIONS sessions, `budget_s` caps the timed
    calls (None: every run however long it takes). Adaptive plan: sessions of runs/SESSIONS calls
    are added until `repeat95_p50` is within ±`target_width` of p50 or `budget_s` has passed.
    """

    runs: int = 300
    threads: int = 1
    batch: int = 1
    budget_s: float | None = DEFAULT_BUDGET_S
    target_width: float = 0.0

    def to_dict(self) -> dict:
        return {"runs": self.runs, "threads": self.threads, "batch": self.batch, "budget_s": self.budget_s,
                "target_width": self.target_width}


def all_cores() -> int:
    """Cores this process may use (respects CPU affinity, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def session_runs(runs: int) -> list[int]:
    """How `runs` timed calls split over sessions: SESSIONS of them (fewer when `runs` is
    smaller, one call each at least), the remainder one extra call each in the first ones."""
    sessions = min(SESSIONS, runs)
    return [runs // sessions + (index < runs % sessions) for index in range(sessions)]


def measure_latency(path: Path, sample: np.ndarray, settings: BenchSettings, delegate: str | None = None,
                    first_warmup_s: float = FIRST_WARMUP_S) -> Latency:
    """Time invokes of one prepared input of `settings.batch` in freshly loaded copies of the
    model, each warmed up until its timings settle (the first also for `first_warmup_s`).

    Fixed plan: `settings.runs` calls over up to SESSIONS sessions; with a `budget_s`, a session
    of a slow model stops early once it is spent (after 20 calls at least), so the run count can
    fall short; without one it is exact. Adaptive plan: see `timing.Narrowing`.
    """
    return measure_interleaved([(path, sample)], settings, delegate, first_warmup_s)[0]


def measure_interleaved(files: list[tuple[Path, np.ndarray]], settings: BenchSettings, delegate: str | None = None,
                        first_warmup_s: float = FIRST_WARMUP_S) -> list[Latency]:
    """`measure_latency` of several files at once: one session of each in turn, each file
    stopping by its own plan (its fixed sessions, or its own width and `budget_s`).

    A shared machine drifts between speeds over seconds; a file timed alone in half a second
    sees one of them, and a repeat a minute later another, beyond its interval. Interleaved,
    every file's sessions spread over the whole phase: each figure averages over the same
    machine states, and its session bootstrap sees them.
    """
    if settings.target_width:
        counts: Iterable[int] = itertools.repeat(math.ceil(settings.runs / SESSIONS))
        session_budget = SESSION_BUDGET_S
    else:
        counts = session_runs(settings.runs)
        session_budget = None if settings.budget_s is None else settings.budget_s / len(counts)
    streams = [_sessions(path, _batch_of(sample, settings.batch), settings, delegate,
                         first_warmup_s if index == 0 else 0.0, session_budget, counts)
               for index, (path, sample) in enumerate(files)]
    if not settings.target_width:
        timed: list[list[tuple[np.ndarray, int]]] = [[] for _ in files]
        for _ in counts:
            for stream, sessions in zip(streams, timed):
                sessions.append(next(stream))
        return [summarize([samples for samples, _ in sessions], sum(warmup for _, warmup in sessions))
                for sessions in timed]
    rules = [Narrowing(settings.target_width, settings.budget_s) for _ in files]
    results: list[Latency | None] = [None] * len(files)
    while any(result is None for result in results):
        for index, (stream, rule) in enumerate(zip(streams, rules)):
            if results[index] is None:
                results[index] = rule.add(lambda: next(stream))
    return [result for result in results if result is not None]


def _batch_of(sample: np.ndarray, batch: int) -> np.ndarray:
    """`batch` samples of `sample` (the first one repeated when it holds fewer)."""
    return np.repeat(sample[:1], batch, axis=0) if len(sample) < batch else sample[:batch]


def _sessions(path: Path, batch: np.ndarray, settings: BenchSettings, delegate: str | None, first_warmup_s: float,
              session_budget: float | None, counts: Iterable[int]) -> Iterator[tuple[np.ndarray, int]]:
    """(timed calls in ms, warm-up calls) of one fresh session per count; each session's model
    is released before the next file's session runs."""
    for session, count in enumerate(counts):
        runner = open_runner(path, settings.threads, delegate)
        runner.set_input(batch)
        warmup = warm_up(runner.invoke, first_warmup_s if session == 0 else 0.0)
        samples = time_calls(runner.invoke, count, session_budget)
        del runner
        yield samples, warmup


def benchmark_file(path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                   delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S,
                   target_width: float = 0.0, latency: Latency | None = None) -> dict:
    """The full method for one artifact: latency at batch 1 on `threads` and on all cores,
    throughput at `batch` (when the batch dimension is dynamic) and peak memory.
    `latency`: the first figure, already measured with the run's other files
    (`measure_interleaved`); the others then take only their minimum of sessions.

    Every figure carries the settings it was measured with, so rows stay comparable.
    `budget_s=None` times exactly `runs` calls per latency figure however slow the model.
    With a `target_width` (the adaptive plan) `budget_s` is the artifact's: each figure adds
    sessions only while it lasts, and only the first figure needs the long first warm-up (the
    next ones follow it at once, on a CPU already at its working clock).
    """
    deadline = None if budget_s is None else time.perf_counter() + budget_s

    def settings(figure_threads: int, figure_batch: int, figure_runs: int) -> BenchSettings:
        left = budget_s if deadline is None or not target_width else max(0.0, deadline - time.perf_counter())
        return BenchSettings(figure_runs, figure_threads, figure_batch, left, target_width)

    later_warmup_s = 0.0 if target_width else FIRST_WARMUP_S
    single = settings(threads, 1, runs)
    if latency is None:
        latency = measure_latency(path, sample, single, delegate)
    elif deadline is not None:
        deadline = time.perf_counter()
    result = {
        "latency_ms": latency.to_dict(), "latency_method": {**single.to_dict(), "budget_s": budget_s},
        "threads": threads, "batch": 1, "runs": latency.runs, "throughput": None, "latency_ms_all_cores": None,
    }
    cores = all_cores()
    if cores != threads:
        many = measure_latency(path, sample, settings(cores, 1, runs), delegate, later_warmup_s)
        result["latency_ms_all_cores"] = {**many.to_dict(), "threads": cores}
    if batch > 1 and open_runner(path, 1, delegate).batch_dynamic:
        timing = measure_latency(path, sample, settings(cores, batch, max(20, runs // 10)), delegate, later_warmup_s)
        result["throughput"] = {"batch": batch, "threads": cores, "samples_per_s": batch / (timing.p50 / 1000),
                                "p50_ms": timing.p50, "sessions": timing.sessions}
    result["peak_memory_mb"] = peak_memory_mb(path, threads, delegate)["model_mb"]  # last: the figures above run back to back
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
    if args.exact and args.target_width:
        raise BenchError("--exact times a fixed number of runs; --target-width samples until the interval is narrow",
                         "pass one of them")
    budget_s = None if args.exact else args.budget_s if args.target_width else DEFAULT_BUDGET_S
    return benchmark_file(args.model, x, args.runs, args.threads, args.batch, args.delegate, budget_s, args.target_width)


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
    parser.add_argument("--target-width", type=float, default=0.0,
                        help="adaptive plan: add sessions until repeat95_p50 is within ±this share of p50 (e.g. 0.02)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help="adaptive plan: seconds per artifact after which no session is added")
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
