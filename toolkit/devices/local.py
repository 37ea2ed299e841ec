"""This machine as a device: the harness in this process (memory in a child), as before devices.

A target without a device is timed here; for a target whose accelerator this machine lacks (a
GPU, an Edge TPU) the host CPU is a stand-in, and the profile's `measured_on` and
`latency_on_device = false` say so.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.benchmark.device_bench import DEFAULT_BUDGET_S

if TYPE_CHECKING:
    import numpy as np

    from toolkit.benchmark.timing import Latency
    from toolkit.targets import Target


class LocalDevice:
    """The machine edgesmith runs on."""

    remote = False

    def identity(self) -> str:
        """What a cached measurement depends on: this CPU and its int8 features."""
        from toolkit.cpu_features import cpu_features, describe

        return describe(cpu_features())

    def measured_on(self, target: Target | None) -> str:
        return target.measured_on if target else "this machine's CPU"

    def on_device(self, target: Target | None) -> bool:
        return target.latency_on_device if target else True

    def benchmark(self, path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                  delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S,
                  target_width: float = 0.0, latency: Latency | None = None) -> dict[str, Any]:
        """The method on this CPU; `delegate` is ignored (the stand-in is labelled by the target);
        `latency`: the first figure, when the run measured it with its other files."""
        from toolkit.benchmark.harness import benchmark_file

        return benchmark_file(path, sample, runs, threads, batch, budget_s, target_width, latency)


LOCAL = LocalDevice()
