"""Latency statistics and the stage cache."""
from __future__ import annotations

import itertools

import numpy as np

from toolkit.benchmark.timing import (MAX_SESSION_AUTOCORRELATION, MIN_SESSIONS, autocorrelation_factor,
                                      sample_until_narrow, summarize, time_calls, warm_up)
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


class ScheduledClock:
    """A fake clock for `timing`: each invoke lasts `durations_ms(call_number)` and nothing else
    takes time, so warm_up's decisions depend only on the schedule."""

    def __init__(self, durations_ms):
        self.now_ns = 10**12
        self.calls = 0
        self.durations_ms = durations_ms

    def perf_counter_ns(self):
        return self.now_ns

    def perf_counter(self):
        return self.now_ns / 1e9

    def invoke(self):
        self.calls += 1
        self.now_ns += round(self.durations_ms(self.calls) * 1e6)


def warm_up_on(monkeypatch, durations_ms, min_seconds=0.0):
    from toolkit.benchmark import timing

    clock = ScheduledClock(durations_ms)
    monkeypatch.setattr(timing, "time", clock)
    count = timing.warm_up(clock.invoke, min_seconds)
    assert count == clock.calls, "warm_up reports the calls it made"
    return count


def block_schedule(block_medians_ms):
    """Call n lasts the median given for its 20-call block; the last value holds from then on."""
    return lambda call: block_medians_ms[min((call - 1) // 20, len(block_medians_ms) - 1)]


def test_warm_up_keeps_going_while_block_medians_differ_by_more_than_5_percent(monkeypatch):
    # blocks: 8, 4, 2, 1, 1 ms → the first two blocks that agree are the 4th and 5th
    assert warm_up_on(monkeypatch, block_schedule([8.0, 4.0, 2.0, 1.0])) == 100
    # each block 6% slower than the last for 6 blocks, then steady: 6% apart never counts as settled
    drifting = [1.06**index for index in range(7)]
    assert warm_up_on(monkeypatch, block_schedule(drifting)) == 8 * 20


def test_warm_up_stops_once_two_block_medians_agree_within_5_percent(monkeypatch):
    assert warm_up_on(monkeypatch, block_schedule([1.0, 1.049])) == 40
    assert warm_up_on(monkeypatch, block_schedule([1.0, 0.951])) == 40
    # outliers inside a block do not matter: medians are compared, not means
    # (4 spikes of 50 ms in the first block, 8 in the next: the means differ 2×, the medians not at all)
    spiky = lambda call: 50.0 if call % 5 == 0 or (call > 20 and call % 5 == 1) else 1.0  # noqa: E731
    assert warm_up_on(monkeypatch, spiky) == 40


def test_warm_up_never_settling_gives_up_after_25_blocks(monkeypatch):
    alternating = lambda call: 1.0 if (call - 1) // 20 % 2 else 2.0  # noqa: E731
    assert warm_up_on(monkeypatch, alternating) == 25 * 20


def test_warm_up_runs_for_at_least_min_seconds(monkeypatch):
    # steady 1.1 ms calls settle after 2 blocks (44 ms), but 0.2 s needs 10 blocks (220 ms)
    assert warm_up_on(monkeypatch, lambda call: 1.1, min_seconds=0.2) == 200
    assert warm_up_on(monkeypatch, lambda call: 1.1, min_seconds=0.0) == 40
    # min_seconds only adds time: a schedule that settles late is not stopped early
    assert warm_up_on(monkeypatch, block_schedule([40.0, 20.0, 10.0, 5.0]), min_seconds=0.2) == 100
    # a fast model reaches the 25-block cap long before 0.2 s: the floor still holds (0.01 ms × 20000)
    assert warm_up_on(monkeypatch, lambda call: 0.01, min_seconds=0.2) == 20000
    alternating = lambda call: 0.01 if (call - 1) // 20 % 2 else 0.02  # noqa: E731
    assert warm_up_on(monkeypatch, alternating, min_seconds=0.2) == 13340  # 667 blocks of 0.3 ms average


def test_warm_up_min_seconds_in_real_time():
    import time

    start = time.perf_counter()
    count = warm_up(lambda: None, min_seconds=0.2)
    assert time.perf_counter() - start >= 0.2 and count >= 40 and count % 20 == 0


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


def test_a_slow_spell_over_consecutive_sessions_widens_the_interval():
    """The same session medians, once with the slow ones together (a spell of the machine, which
    a repeat may not see) and once spread out: only the spell widens the interval."""
    rng = np.random.default_rng(7)
    medians = [1.0] * 14 + [1.04] * 6
    spell = [rng.normal(median, 0.005, 30) for median in medians]
    spread = [spell[index] for index in np.random.default_rng(8).permutation(len(spell))]
    width = lambda latency: latency.repeat95_p50[1] - latency.repeat95_p50[0]  # noqa: E731
    together, apart = summarize(spell, warmup_runs=0), summarize(spread, warmup_runs=0)
    assert together.p50 == apart.p50
    assert width(together) > 1.5 * width(apart)
    assert autocorrelation_factor(medians) > 2.0


def test_autocorrelation_factor_leaves_independent_sessions_alone():
    assert autocorrelation_factor([1.0, 1.02] * 10) == 1.0, "alternating sessions: negative ρ counts as 0"
    assert autocorrelation_factor([1.0, 1.1, 1.2]) == 1.0, "too few sessions to judge"
    assert autocorrelation_factor([1.0] * 12) == 1.0
    cap = np.sqrt((1 + MAX_SESSION_AUTOCORRELATION) / (1 - MAX_SESSION_AUTOCORRELATION))
    assert autocorrelation_factor(list(np.linspace(1.0, 2.0, 40))) == cap, "a steady trend hits the cap"
    factors = [autocorrelation_factor(list(np.random.default_rng(seed).normal(1.0, 0.01, 20))) for seed in range(200)]
    assert np.median(factors) == 1.0 and np.mean(factors) < 1.2


class SyntheticSessions:
    """Sessions for `sample_until_narrow` from a generator of session medians; each session takes
    `seconds` of the fake clock, so the budget decides by schedule, not by this machine."""

    def __init__(self, monkeypatch, medians, seconds=0.1, calls=30, spread=0.002):
        from toolkit.benchmark import timing

        self.clock = ScheduledClock(lambda call: 0.0)
        monkeypatch.setattr(timing, "time", self.clock)
        self.medians, self.seconds, self.calls, self.spread = medians, seconds, calls, spread
        self.rng = np.random.default_rng(2)
        self.count = 0

    def __call__(self):
        self.count += 1
        self.clock.now_ns += round(self.seconds * 1e9)
        median = next(self.medians)
        return self.rng.normal(median, self.spread * median, self.calls), 40


def test_adaptive_plan_stops_after_the_minimum_sessions_on_a_stable_artifact(monkeypatch):
    sessions = SyntheticSessions(monkeypatch, iter(lambda: 1.0, None))
    latency = sample_until_narrow(sessions, target_width=0.02, budget_s=10.0)
    assert (latency.stopped_by, latency.sessions, sessions.count) == ("width", MIN_SESSIONS, MIN_SESSIONS)
    assert latency.runs == 30 * MIN_SESSIONS and latency.warmup_runs == 40 * MIN_SESSIONS
    low, high = latency.repeat95_p50
    assert high - latency.p50 <= 0.02 * latency.p50 and latency.p50 - low <= 0.02 * latency.p50
    assert latency.to_dict()["sessions"] == MIN_SESSIONS


def test_adaptive_plan_adds_sessions_until_the_interval_narrows(monkeypatch):
    # session medians spread 3%: the interval narrows as sessions accumulate, past the minimum
    rng = np.random.default_rng(5)
    sessions = SyntheticSessions(monkeypatch, iter(lambda: rng.normal(1.0, 0.03), None))
    latency = sample_until_narrow(sessions, target_width=0.02, budget_s=6.0)
    assert latency.stopped_by == "width" and MIN_SESSIONS < latency.sessions < 60
    assert latency.runs == 30 * latency.sessions


def test_adaptive_plan_stops_at_the_budget_on_a_noisy_artifact(monkeypatch):
    medians = itertools.cycle([1.0, 2.0])  # bimodal sessions never agree (a random draw could, by chance)
    sessions = SyntheticSessions(monkeypatch, medians, seconds=0.1)
    latency = sample_until_narrow(sessions, target_width=0.02, budget_s=1.5)
    assert latency.stopped_by == "budget" and latency.sessions == 15 == sessions.count
    low, high = latency.repeat95_p50
    assert high - low > 0.04 * latency.p50, "the wide interval it reached is what it reports"


def test_adaptive_plan_runs_its_minimum_sessions_even_without_budget(monkeypatch):
    medians = itertools.cycle([1.0, 2.0])
    sessions = SyntheticSessions(monkeypatch, medians, seconds=5.0)
    latency = sample_until_narrow(sessions, target_width=0.02, budget_s=1.0)
    assert (latency.stopped_by, latency.sessions) == ("budget", MIN_SESSIONS)


def test_session_bootstrap_handles_sessions_of_different_lengths():
    rng = np.random.default_rng(4)
    sessions = [rng.normal(1.0, 0.01, size) for size in (30, 30, 29, 20, 5, 30, 31)]
    latency = summarize(sessions, warmup_runs=0)
    low, high = latency.ci95_p50
    assert low <= latency.p50 <= high and high - low < 0.05
    assert latency.sessions == 7 and latency.runs == sum(len(s) for s in sessions)


def _scheduled_sessions(monkeypatch, medians):
    """device_bench's sessions replaced by synthetic ones: each takes 0.1 s of a fake clock and
    appends its file to the returned list, so the order files were timed in can be read back."""
    from toolkit.benchmark import device_bench, timing

    clock = ScheduledClock(lambda call: 0.0)
    monkeypatch.setattr(timing, "time", clock)
    order, rng = [], np.random.default_rng(2)

    def sessions(path, batch, settings, delegate, first_warmup_s, session_budget, counts):
        for _ in counts:
            order.append(path)
            clock.now_ns += 100_000_000
            median = next(medians[path])
            yield rng.normal(median, 0.002 * median, 30), 40

    monkeypatch.setattr(device_bench, "_sessions", sessions)
    return order


def test_interleaved_files_take_turns_and_each_stops_by_its_own_width_or_budget(monkeypatch):
    from toolkit.benchmark.device_bench import BenchSettings, measure_interleaved

    order = _scheduled_sessions(monkeypatch, {"stable": iter(lambda: 1.0, None), "noisy": itertools.cycle([1.0, 2.0])})
    sample = np.zeros((1, 2), np.float32)
    stable, noisy = measure_interleaved([("stable", sample), ("noisy", sample)],
                                        BenchSettings(runs=300, target_width=0.02, budget_s=1.5))
    assert (stable.stopped_by, stable.sessions) == ("width", MIN_SESSIONS)
    assert (noisy.stopped_by, noisy.sessions) == ("budget", 15), "the budget counts the file's own sessions only"
    assert order[: 2 * MIN_SESSIONS] == ["stable", "noisy"] * MIN_SESSIONS and set(order[2 * MIN_SESSIONS :]) == {"noisy"}


def test_interleaved_fixed_plan_gives_every_file_its_sessions_in_turn(monkeypatch):
    from toolkit.benchmark.device_bench import BenchSettings, measure_interleaved

    order = _scheduled_sessions(monkeypatch, {name: iter(lambda: 1.0, None) for name in "abc"})
    sample = np.zeros((1, 2), np.float32)
    figures = measure_interleaved([(name, sample) for name in "abc"], BenchSettings(runs=20, target_width=0.0))
    assert order == list("abc") * 10
    assert [(latency.sessions, latency.stopped_by) for latency in figures] == [(10, "plan")] * 3
