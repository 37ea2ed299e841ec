"""Latency statistics: percentiles, spread and a bootstrap confidence interval on the median.

Shared machines are noisy, so a single mean hides the truth; the p50 with its 95% interval
tells the reader whether two variants really differ.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BLOCKS = 10
SETTLE_BLOCK = 20
SETTLE_TOLERANCE = 0.05
MAX_WARMUP_BLOCKS = 25


@dataclass(frozen=True)
class Latency:
    """Milliseconds per invoke; `ci95_p50` is a bootstrap 95% interval on the median."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    ci95_p50: tuple[float, float]
    runs: int
    warmup_runs: int

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ci95_p50"] = list(self.ci95_p50)
        return data


def summarize(samples_ms: np.ndarray, warmup_runs: int, seed: int = 0) -> Latency:
    """Percentiles, mean/std and a block-bootstrap 95% interval of the median of `samples_ms`.

    The samples are in time order. Resampling single calls would assume they are independent,
    but a shared machine drifts (frequency, caches, neighbours) over the measurement, so the
    interval resamples contiguous blocks instead: drift inside the run widens it, as it should.
    """
    samples_ms = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
    low, high = _block_bootstrap_ci(samples_ms, seed)
    return Latency(
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        mean=float(samples_ms.mean()),
        std=float(samples_ms.std(ddof=1)) if len(samples_ms) > 1 else 0.0,
        ci95_p50=(float(low), float(high)),
        runs=len(samples_ms),
        warmup_runs=warmup_runs,
    )


def _block_bootstrap_ci(samples_ms: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    count = len(samples_ms)
    blocks = BLOCKS if count >= 2 * BLOCKS else count
    usable = count - count % blocks
    chunks = samples_ms[:usable].reshape(blocks, -1)
    picks = rng.integers(0, blocks, size=(BOOTSTRAP_RESAMPLES, blocks))
    medians = np.median(chunks[picks].reshape(BOOTSTRAP_RESAMPLES, -1), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def warm_up(invoke: Callable[[], None]) -> int:
    """Invoke in blocks until two consecutive block medians agree within 5%; return the count.

    Caches, the allocator and XNNPACK's packed weights settle in the first calls; timing them
    would inflate the tail percentiles.
    """
    previous = None
    for block in range(1, MAX_WARMUP_BLOCKS + 1):
        current = float(np.median(time_calls(invoke, SETTLE_BLOCK)))
        if previous is not None and abs(current - previous) <= SETTLE_TOLERANCE * previous:
            return block * SETTLE_BLOCK
        previous = current
    return MAX_WARMUP_BLOCKS * SETTLE_BLOCK


def time_calls(invoke: Callable[[], None], runs: int, budget_s: float | None = None) -> np.ndarray:
    """Wall time of each of `runs` calls in ms, stopping early once `budget_s` is spent."""
    clock = time.perf_counter_ns
    samples = np.empty(runs, dtype=np.int64)
    deadline = None if budget_s is None else clock() + int(budget_s * 1e9)
    count = 0
    for count in range(1, runs + 1):
        start = clock()
        invoke()
        end = clock()
        samples[count - 1] = end - start
        if deadline is not None and end > deadline and count >= SETTLE_BLOCK:
            break
    return samples[:count] / 1e6
