"""One benchmark method for every runtime: accuracy, agreement and latency of an artifact."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.bench.runners import open_runner, predict
from toolkit.bench.timing import Latency, summarize, time_calls, warm_up

DEFAULT_BUDGET_S = 5.0


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
    """Warm up, then time `settings.runs` invokes of one prepared input of `settings.batch`."""
    runner = open_runner(path, settings.threads)
    batch = np.repeat(sample[:1], settings.batch, axis=0) if len(sample) < settings.batch else sample[: settings.batch]
    runner.set_input(batch)
    warmup_runs = warm_up(runner.invoke)
    samples = time_calls(runner.invoke, settings.runs, settings.budget_s)
    return summarize(samples, warmup_runs)


def score(path: Path, x: np.ndarray, y: np.ndarray, reference_top1: np.ndarray) -> dict[str, float]:
    """Accuracy on (x, y) and top-1 agreement with the full model's predictions."""
    predictions = predict(open_runner(path, threads=all_cores()), x)
    top1 = predictions.argmax(axis=1)
    return {
        "accuracy": float((top1 == y).mean()),
        "agreement": float((top1 == reference_top1).mean()),
    }


def supports_batch(path: Path) -> bool:
    """Whether the artifact accepts batches larger than 1 (fixed-batch exports do not)."""
    return open_runner(path, threads=1).batch_dynamic
