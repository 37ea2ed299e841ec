"""Does stopping early cost trust? On synthetic sessions (no machine noise, no drift: only the
sampling the interval is meant to describe), count how often an independent repeat's p50 lands
inside the reported `repeat95_p50`, for the fixed plan (10 sessions) and the adaptive plan
(sessions added until ±2% or the budget). Stopping when the interval first looks narrow could
pick lucky draws; this shows whether it does. Goal: adaptive coverage ≥ 0.9 and not below the
fixed plan's by more than the trials' own noise. `repeatability.py` is the check on real files.

    python benchmarks/adaptive_coverage.py [--trials 150]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal  # noqa: E402

from toolkit.benchmark import timing  # noqa: E402
from toolkit.benchmark.device_bench import SESSIONS  # noqa: E402
from toolkit.config import Experiment  # noqa: E402

SESSION_SECONDS = 0.03  # what one synthetic session "takes" on the fake clock
CALLS = 30
CALL_SPREAD = 0.02  # within-session spread of calls around the session's median


class FakeClock:
    """Stands in for `timing.time`: only sessions advance it, so the budget counts sessions."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=150)
    args = parser.parse_args()
    plan = Experiment()
    clock = FakeClock()
    timing.time = clock
    rng = np.random.default_rng(0)
    for spread in (0.01, 0.03, 0.06):  # how much sessions differ from each other

        def session() -> tuple[np.ndarray, int]:
            clock.now += SESSION_SECONDS
            return rng.normal(rng.normal(1.0, spread), CALL_SPREAD, CALLS), 0

        def fixed() -> timing.Latency:
            return timing.summarize([session()[0] for _ in range(SESSIONS)], 0)

        def adaptive() -> timing.Latency:
            return timing.sample_until_narrow(session, plan.bench_target_width, plan.bench_budget_s)

        inside = {"fixed": 0, "adaptive": 0}
        sessions = []
        for _ in range(args.trials):
            for name, measure in (("fixed", fixed), ("adaptive", adaptive)):
                reported, repeat = measure(), measure()
                inside[name] += reported.repeat95_p50[0] <= repeat.p50 <= reported.repeat95_p50[1]
                if name == "adaptive":
                    sessions.append(reported.sessions)
        fixed_share, adaptive_share = inside["fixed"] / args.trials, inside["adaptive"] / args.trials
        print(f"sessions {spread:.0%} apart: repeats inside repeat95_p50 — fixed {fixed_share:.2f}, adaptive "
              f"{adaptive_share:.2f} (median {np.median(sessions):g} sessions; goal ≥ 0.9: {goal(adaptive_share >= 0.9)})")


if __name__ == "__main__":
    main()
