"""One benchmark method for every runtime: accuracy, agreement and latency of an artifact."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.benchmark.runners import Runner, open_runner, predict
from toolkit.benchmark.timing import SETTLE_BLOCK, Latency, summarize, time_calls, warm_up

DEFAULT_BUDGET_S = 5.0
SESSIONS = 10  # freshly loaded model copies per measurement (see timing.summarize)
FIRST_WARMUP_S = 0.2  # lets an idle CPU reach its working clock before anything is timed


@dataclass(frozen=True)
class BenchSettings:
    """How latency is measured; stored next to every figure so it can be reproduced."""

    runs: int = 300
    threads: int = 1
    batch: int = 1
    budget_s: float = DEFAULT_BUDGET_S

    def to_dict(self) -> dict:
        return {"runs": self.runs, "threads": self.threads, "batch": self.batch, "budget_s": self.budget_s}


def all_cores() -> int:
    """Cores this process may use (respects CPU affinity, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0))


def measure_latency(path: Path, sample: np.ndarray, settings: BenchSettings) -> Latency:
    """Time `settings.runs` invokes of one prepared input of `settings.batch`, spread over
    SESSIONS freshly loaded copies of the model, each warmed up until its timings settle."""
    batch = np.repeat(sample[:1], settings.batch, axis=0) if len(sample) < settings.batch else sample[: settings.batch]
    per_session = max(SETTLE_BLOCK, -(-settings.runs // SESSIONS))
    sessions, warmup_runs = [], 0
    for session in range(SESSIONS):
        runner = open_runner(path, settings.threads)
        runner.set_input(batch)
        warmup_runs += warm_up(runner.invoke, FIRST_WARMUP_S if session == 0 else 0.0)
        sessions.append(time_calls(runner.invoke, per_session, settings.budget_s / SESSIONS))
    return summarize(sessions, warmup_runs)


def benchmark_file(path: Path, sample: np.ndarray, runs: int, threads: int, batch: int) -> dict:
    """The full method for one artifact: latency at batch 1 on `threads` and on all cores,
    throughput at `batch` (when the batch dimension is dynamic) and peak memory.

    Every figure carries the settings it was measured with, so rows stay comparable.
    """
    from toolkit.benchmark.memory import peak_memory_mb
    from toolkit.cpu_features import cpu_features, describe

    single = BenchSettings(runs=runs, threads=threads, batch=1)
    latency = measure_latency(path, sample, single)
    result = {
        "latency_ms": latency.to_dict(),
        "latency_method": single.to_dict(),
        "threads": threads,
        "batch": 1,
        "runs": latency.runs,
        "throughput": None,
        "latency_ms_all_cores": None,
        "peak_memory_mb": peak_memory_mb(path, threads)["model_mb"],
        "latency_cpu": describe(cpu_features()),  # int8 speed and results depend on these flags
    }
    cores = all_cores()
    if cores != threads:
        many = BenchSettings(runs=runs, threads=cores, batch=1)
        result["latency_ms_all_cores"] = {**measure_latency(path, sample, many).to_dict(), "threads": cores}
    if batch > 1 and supports_batch(path):
        batched = BenchSettings(runs=max(20, runs // 10), threads=cores, batch=batch)
        timing = measure_latency(path, sample, batched)
        result["throughput"] = {
            "batch": batch,
            "threads": cores,
            "samples_per_s": batch / (timing.p50 / 1000),
            "p50_ms": timing.p50,
        }
    return result


def score(path: Path, x: np.ndarray, y: np.ndarray, reference_top1: np.ndarray,
          opener: Callable[..., Runner] = open_runner) -> dict[str, float]:
    """Accuracy on (x, y) and top-1 agreement with the full model's predictions, in the runner
    `opener` gives (a target's runtime: TFLite Micro for a microcontroller's .tflite file)."""
    predictions = predict(opener(path, threads=all_cores()), x)
    top1 = predictions.argmax(axis=1)
    return {
        "accuracy": float((top1 == y).mean()),
        "agreement": float((top1 == reference_top1).mean()),
    }


def supports_batch(path: Path) -> bool:
    """Whether the artifact accepts batches larger than 1 (fixed-batch exports do not)."""
    return open_runner(path, threads=1).batch_dynamic
