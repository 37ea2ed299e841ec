"""Compare artifacts' latency inside one process, interleaved.

On a shared machine the speed drifts over seconds; timing A then B would fold that drift into
the ratio. Alternating short rounds of A and B exposes both to the same conditions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.benchmark.runners import open_runner
from toolkit.benchmark.timing import Latency, summarize, time_calls, warm_up


def interleaved_latency(
    paths: list[Path], sample: np.ndarray, threads: int = 1, rounds: int = 30, per_round: int = 100
) -> list[Latency]:
    """Latency of each artifact at batch 1, measured in alternating rounds."""
    runners = [open_runner(path, threads) for path in paths]
    warmups = []
    for runner in runners:
        runner.set_input(sample[:1])
        warmups.append(warm_up(runner.invoke))
    samples: list[list[np.ndarray]] = [[] for _ in runners]
    for _ in range(rounds):
        for index, runner in enumerate(runners):
            samples[index].append(time_calls(runner.invoke, per_round))
    return [summarize(parts, warmup) for parts, warmup in zip(samples, warmups)]
