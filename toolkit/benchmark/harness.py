"""One benchmark method for every runtime: accuracy, agreement and latency of an artifact.

The method itself (sessions, warm-up, percentiles, intervals, all cores, memory) is
`device_bench`, the same code a device runs; this adds what only the host knows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.benchmark import device_bench
from toolkit.benchmark.device_bench import DEFAULT_BUDGET_S, all_cores
from toolkit.benchmark.device_runners import BenchError
from toolkit.benchmark.timing import Latency
from toolkit.benchmark.runners import Runner, open_runner, predict
from toolkit.errors import EdgesmithError
from toolkit.task import CLASSIFICATION, REGRESSION, score_outputs


def benchmark_file(path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                   budget_s: float | None = DEFAULT_BUDGET_S, target_width: float = 0.0,
                   latency: Latency | None = None) -> dict:
    """device_bench.benchmark_file on this machine, plus the CPU it ran on (int8 speed and
    results depend on its flags). `budget_s=None` times exactly `runs` calls however slow;
    a `target_width` selects the adaptive plan (see device_bench.BenchSettings); `latency`
    is the first figure when it was measured already (interleaved with other files)."""
    from toolkit.cpu_features import cpu_features, describe

    try:
        result = device_bench.benchmark_file(path, sample, runs, threads, batch, budget_s=budget_s,
                                              target_width=target_width, latency=latency)
    except BenchError as error:
        raise EdgesmithError(error.problem, error.fix) from None
    return {**result, "latency_cpu": describe(cpu_features())}


def measure_together(files: list[tuple[Path, np.ndarray]], settings: device_bench.BenchSettings) -> list[Latency]:
    """device_bench.measure_interleaved on this machine; a file that cannot run is a clear error."""
    try:
        return device_bench.measure_interleaved(files, settings)
    except BenchError as error:
        raise EdgesmithError(error.problem, error.fix) from None


def score(path: Path, x: np.ndarray, y: np.ndarray, reference: np.ndarray,
          opener: Callable[..., Runner] = open_runner, task: str = CLASSIFICATION) -> dict[str, float | None]:
    """The task's figures on (x, y) (accuracy, or MAE and RMSE); top-1 agreement (classifiers)
    and output fidelity (SQNR, cosine) against the full model's raw outputs `reference`, in the
    runner `opener` gives (a target's runtime: TFLite Micro for a microcontroller's .tflite file)."""
    from toolkit.fidelity import output_fidelity
    from toolkit.top1 import top1

    predictions = predict(opener(path, threads=all_cores()), x)
    agreement = None if task == REGRESSION else float((top1(predictions) == top1(reference)).mean())
    return {**score_outputs(predictions, y, task), "agreement": agreement, **output_fidelity(predictions, reference)}
