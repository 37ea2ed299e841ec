"""Latency statistics and the stage cache."""
from __future__ import annotations

import numpy as np

from toolkit.benchmark.timing import summarize, time_calls, warm_up
from toolkit.cache import StageCache


def test_summary_percentiles_and_interval_contain_the_median():
    samples = np.random.default_rng(0).gamma(4.0, 0.02, size=500)
    latency = summarize([samples], warmup_runs=20)
    assert latency.p50 == np.percentile(samples, 50)
    assert latency.p50 <= latency.p90 <= latency.p99
    low, high = latency.ci95_p50
    assert low <= latency.p50 <= high and high - low < 0.2 * latency.p50
    assert latency.to_dict()["ci95_p50"] == [low, high]


def test_time_calls_counts_and_budget():
    calls = []
    samples = time_calls(lambda: calls.append(1), runs=50)
    assert len(samples) == 50 == len(calls) and (samples >= 0).all()
    short = time_calls(lambda: sum(range(2000)), runs=10**6, budget_s=0.05)
    assert 20 <= len(short) < 10**6


def test_warm_up_stops_when_stable():
    assert warm_up(lambda: None) >= 40


def test_cache_detects_changed_files(tmp_path):
    cache = StageCache(tmp_path)
    artifact = tmp_path / "a.bin"
    artifact.write_bytes(b"abc")
    key = cache.key("stage", 1)
    assert cache.get(key) is None
    cache.put(key, {"value": 1}, [artifact])
    assert cache.get(key) == {"value": 1}
    artifact.write_bytes(b"abd")
    assert cache.get(key) is None, "a file changed behind the cache's back must not be reused"
    assert StageCache(tmp_path, enabled=False).get(key) is None


def test_sessions_that_disagree_widen_the_interval():
    rng = np.random.default_rng(1)
    steady = [rng.normal(1.0, 0.01, 100) for _ in range(10)]
    drifting = [rng.normal(1.0 + 0.02 * (i % 2), 0.01, 100) for i in range(10)]
    narrow, wide = summarize(steady, warmup_runs=0), summarize(drifting, warmup_runs=0)
    width = lambda interval: interval[1] - interval[0]  # noqa: E731
    assert width(wide.ci95_p50) > 2 * width(narrow.ci95_p50)
    low, high = narrow.repeat95_p50
    assert high - low >= 0.02 * narrow.p50 * 0.99, "the repeat interval never ignores run-to-run drift"
    assert low <= narrow.ci95_p50[0] and narrow.ci95_p50[1] <= high
