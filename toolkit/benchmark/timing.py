"""Latency statistics: percentiles, spread and a bootstrap confidence interval on the median.

Shared machines are noisy, so a single mean hides the truth; the p50 with its 95% interval
tells the reader whether two variants really differ.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BLOCKS = 10
# Run-to-run drift of a p50 on a shared 2-core VM, beyond what one run's own samples show:
# benchmarks/repeatability.py measured repeats 0.2–0.5% apart; 1% keeps a margin.
DRIFT_FLOOR = 0.01
SETTLE_BLOCK = 20
SETTLE_TOLERANCE = 0.05
MAX_WARMUP_BLOCKS = 25
# The adaptive plan never judges its interval on fewer sessions than the fixed plan's 10, the
# count repeat95_p50 was checked on (benchmarks/repeatability.py): a bootstrap over fewer
# sessions reports intervals narrower than the truth (five digits files on a busy 2-core VM:
# after 4 sessions four of them said ±2–6%, after 30 the five said ±5–26%), and stopping at
# the first narrow interval would pick exactly those.
MIN_SESSIONS = 10
# Sessions are timed in order, and a shared machine's slow spells last several of them: then
# neighbouring sessions agree with each other more than with the rest, the session bootstrap
# (which assumes independent sessions) reports too narrow an interval, and a repeat of the
# benchmark, which sees other spells, falls outside it. The lag-1 autocorrelation of the session
# medians says how much: the usual effective-sample-size factor √((1 + ρ) / (1 − ρ)) widens the
# interval (ρ below 0 counts as 0; ρ is capped so one estimate from few sessions cannot explode).
MAX_SESSION_AUTOCORRELATION = 0.8
BOOTSTRAP_CHUNK = 2_000_000  # resampled values held at once by the session bootstrap


@dataclass(frozen=True)
class Latency:
    """Milliseconds per invoke.

    `ci95_p50`: bootstrap 95% confidence interval of the median (sampling noise only).
    `repeat95_p50`: where a repeat of this benchmark's p50 is expected to fall. A repeat has
    sampling noise of its own (√2 wider: a 95% CI holds another run's estimate only ~83% of
    the time), and the machine drifts between runs by more than within one, which no
    resampling of one run can see; that drift is added in quadrature as DRIFT_FLOOR × p50.
    """

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    ci95_p50: tuple[float, float]
    repeat95_p50: tuple[float, float]
    runs: int
    warmup_runs: int
    sessions: int = 1
    stopped_by: str = "plan"  # "plan": a fixed number of sessions; "width" or "budget": the adaptive plan

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ci95_p50"] = list(self.ci95_p50)
        data["repeat95_p50"] = list(self.repeat95_p50)
        return data


def summarize(sessions_ms: list[np.ndarray], warmup_runs: int, seed: int = 0) -> Latency:
    """Percentiles, mean/std and a 95% interval of the median over timed calls grouped by session.

    A "session" is one freshly loaded model timed for a while. Calls within a session are not
    independent of each other, and sessions differ from each other (memory layout, frequency,
    neighbours on a shared machine) by more than calls within one do. So the interval resamples
    whole sessions (a cluster bootstrap): it describes what a *repeat* of the benchmark would
    report, not only the noise inside this one; it is widened when consecutive sessions move
    together (autocorrelation_factor). With a single session it falls back to resampling
    contiguous blocks of calls.
    """
    groups = [np.asarray(group, dtype=np.float64) for group in sessions_ms]
    samples_ms = np.concatenate(groups)
    p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
    if len(groups) > 1:
        low, high = _cluster_bootstrap_ci(groups, seed)
        widen = autocorrelation_factor([float(np.median(group)) for group in groups])
        low, high = p50 - widen * (p50 - low), p50 + widen * (high - p50)
    else:
        low, high = _block_bootstrap_ci(samples_ms, seed)
    low_width, high_width = (math.hypot(math.sqrt(2.0) * width, DRIFT_FLOOR * p50) for width in (p50 - low, high - p50))
    return Latency(
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        mean=float(samples_ms.mean()),
        std=float(samples_ms.std(ddof=1)) if len(samples_ms) > 1 else 0.0,
        ci95_p50=(float(low), float(high)),
        repeat95_p50=(float(p50 - low_width), float(p50 + high_width)),
        runs=len(samples_ms),
        warmup_runs=warmup_runs,
        sessions=len(groups),
    )


def autocorrelation_factor(session_medians: list[float]) -> float:
    """How much wider than the session bootstrap's the interval must be when consecutive
    sessions move together (see MAX_SESSION_AUTOCORRELATION); 1 for independent sessions."""
    values = np.asarray(session_medians, dtype=np.float64)
    if len(values) < 4:
        return 1.0
    centred = values - values.mean()
    spread = float(centred @ centred)
    if spread == 0.0:
        return 1.0
    rho = min(max(float(centred[:-1] @ centred[1:]) / spread, 0.0), MAX_SESSION_AUTOCORRELATION)
    return math.sqrt((1.0 + rho) / (1.0 - rho))


def within_width(latency: Latency, target_width: float) -> bool:
    """Whether both sides of `repeat95_p50` lie within ±`target_width` × p50."""
    low, high = latency.repeat95_p50
    return max(latency.p50 - low, high - latency.p50) <= target_width * latency.p50


class Narrowing:
    """The adaptive plan's stopping rule for one file, fed a session at a time: stop once
    `repeat95_p50` is within ±`target_width` of p50 (after `min_sessions`), or once the file's
    own sessions and statistics have taken `budget_s`. Counting the file's own time, not the
    clock, lets several files share the phase (device_bench.measure_interleaved)."""

    def __init__(self, target_width: float, budget_s: float, min_sessions: int = MIN_SESSIONS) -> None:
        self.target_width, self.budget_s, self.min_sessions = target_width, budget_s, min_sessions
        self.sessions: list[np.ndarray] = []
        self.warmup_runs = 0
        self.spent_s = 0.0

    def add(self, next_session: Callable[[], tuple[np.ndarray, int]]) -> Latency | None:
        """Run one more session; the figure once the rule stops, else None."""
        start = time.perf_counter()
        samples, warmup = next_session()
        self.sessions.append(samples)
        self.warmup_runs += warmup
        latency = summarize(self.sessions, self.warmup_runs) if len(self.sessions) >= self.min_sessions else None
        self.spent_s += time.perf_counter() - start
        if latency is None:
            return None
        if within_width(latency, self.target_width):
            return replace(latency, stopped_by="width")
        return replace(latency, stopped_by="budget") if self.spent_s >= self.budget_s else None


def sample_until_narrow(next_session: Callable[[], tuple[np.ndarray, int]], target_width: float,
                        budget_s: float, min_sessions: int = MIN_SESSIONS) -> Latency:
    """The adaptive plan for one file: add sessions (`next_session()` → its timed calls in ms and
    its warm-up calls) until the `Narrowing` rule stops.

    A stable artifact stops after `min_sessions`; a noisy one gets the budget and reports the
    interval it reached (`stopped_by` says which). The interval is the same cluster bootstrap
    as a fixed plan's, so a repeat still lands in it as often.
    """
    rule = Narrowing(target_width, budget_s, min_sessions)
    while True:
        latency = rule.add(next_session)
        if latency is not None:
            return latency


def _cluster_bootstrap_ci(groups: list[np.ndarray], seed: int) -> tuple[float, float]:
    """Vectorized (the adaptive plan recomputes it after every session): sessions padded with NaN
    into one table, each resample's values sorted (NaN last) and its median read off by count."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(BOOTSTRAP_RESAMPLES, len(groups)))
    counts = np.array([len(group) for group in groups])
    table = np.full((len(groups), counts.max()), np.nan)
    for row, group in enumerate(groups):
        table[row, : len(group)] = group
    chunk = max(1, BOOTSTRAP_CHUNK // table.size)
    medians = np.concatenate([_sorted_medians(table[rows].reshape(len(rows), -1), counts[rows].sum(axis=1))
                              for rows in (picks[start:start + chunk] for start in range(0, len(picks), chunk))])
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def _sorted_medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each row's first `counts` values once sorted (the NaN padding sorts last)."""
    ordered = np.sort(values, axis=1)
    rows = np.arange(len(values))
    return (ordered[rows, (counts - 1) // 2] + ordered[rows, counts // 2]) / 2


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


def warm_up(invoke: Callable[[], None], min_seconds: float = 0.0) -> int:
    """Invoke for at least `min_seconds` and until two consecutive 20-call block medians agree
    within 5%; return the number of calls.

    Caches, the allocator and XNNPACK's packed weights settle in the first calls, and a CPU that
    was idle needs tens of milliseconds to reach its working clock; timing either would bias
    the figures.
    """
    deadline = time.perf_counter() + min_seconds
    previous = None
    block = 0
    while True:  # MAX_WARMUP_BLOCKS caps a model that never settles, but never cuts `min_seconds` short
        block += 1
        current = float(np.median(time_calls(invoke, SETTLE_BLOCK)))
        settled = previous is not None and abs(current - previous) <= SETTLE_TOLERANCE * previous
        if (settled or block >= MAX_WARMUP_BLOCKS) and time.perf_counter() >= deadline:
            return block * SETTLE_BLOCK
        previous = current


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
