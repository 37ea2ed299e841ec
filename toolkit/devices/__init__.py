"""Where a latency is measured: on this machine, or on the device itself.

A device kind is one module registered by its URL scheme in KINDS (`ssh://user@host[:port]`
→ `ssh.py`); this machine is `local.py`. A target gets a device from its profile (`device =
"ssh://…"`) or from the run (`--device cpu=ssh://…`, which wins). Devices are connected when
the run starts, so a device that cannot be reached stops the run before any training; a device
lost later costs only its own measurements (`latency_ms: null` with the reason), which the next
run of the same command takes again.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from toolkit.benchmark.device_bench import DEFAULT_BUDGET_S
from toolkit.errors import EdgesmithError

if TYPE_CHECKING:
    import numpy as np

    from toolkit.targets import Target

KINDS = {"ssh": "toolkit.devices.ssh"}  # URL scheme → the module that reaches such a device


class MeasurementFailed(EdgesmithError):
    """A connected device could not measure one artifact (link lost, delegate missing…): the
    record says why, the run goes on."""


class Device(Protocol):
    """What a measurement needs from a device. Remote ones also have `url`, `facts` (what
    `toolkit.probe` says there), `require(packages, why)` and `predict(path, x)`."""

    remote: bool

    def identity(self) -> str: ...

    def measured_on(self, target: Target | None) -> str: ...

    def on_device(self, target: Target | None) -> bool: ...

    def benchmark(self, path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                  delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S,
                  target_width: float = 0.0) -> dict[str, Any]: ...


def check_url(url: str) -> str:
    """`url` if it names a known device kind, else a one-line error with the form to use."""
    scheme = urlsplit(url).scheme
    if scheme not in KINDS or not urlsplit(url).hostname:
        raise EdgesmithError(f"'{url}' is not a device address",
                             f"write it as {' or '.join(f'{kind}://user@host[:port]' for kind in KINDS)}")
    return url


def open_device(url: str) -> Device:
    """Connect to the device at `url` (copies the benchmark code, reads what the device is)."""
    return importlib.import_module(KINDS[urlsplit(check_url(url)).scheme]).connect(url)


def bench_file(path: Path, sample: np.ndarray, runs: int, threads: int, batch: int, url: str | None = None,
               budget_s: float | None = DEFAULT_BUDGET_S) -> dict[str, Any]:
    """One file with the run's method (`edgesmith bench`, `toolkit.benchmark`), here or on the device at `url`."""
    from toolkit.devices.local import LOCAL

    device = open_device(url) if url else LOCAL
    timing = device.benchmark(path, sample, runs, threads, batch, budget_s=budget_s)
    return {**timing, "latency_measured_on": device.measured_on(None)}


def device_packages() -> tuple[str, ...]:
    """What a device's Python may need, whose versions the probe reports: numpy and every
    registered runtime's DEVICE_PACKAGES."""
    from toolkit.runtimes import runtime_packages

    return ("numpy", *runtime_packages(on_device=True))


def parse_assignment(text: str) -> tuple[str, str]:
    """'cpu=ssh://pi@raspberrypi.local' → ('cpu', 'ssh://pi@raspberrypi.local')."""
    target, _, url = text.partition("=")
    if not target.strip() or not url.strip():
        raise EdgesmithError(f"device setting '{text}' is not TARGET=URL", "e.g. --device cpu=ssh://pi@raspberrypi.local")
    return target.strip(), check_url(url.strip())


def connect_devices(targets: list[Target], assignments: tuple[str, ...]) -> dict[str, Device]:
    """{target name: connected device} for every target measured on a device; each device is
    connected once and must have the runtimes its targets need."""
    from toolkit.runtimes import runtime_named

    urls = {target.name: target.device for target in targets if target.device}
    names = {target.name for target in targets}
    for target_name, url in map(parse_assignment, assignments):
        if target_name not in names:
            raise EdgesmithError(f"--device names target '{target_name}', which this run does not build",
                                 f"use one of: {', '.join(sorted(names))}")
        urls[target_name] = url
    resources = {target.name: target.ray_resource for target in targets if target.ray_resource and target.name not in urls}
    for target in targets:
        if (urls.get(target.name) or resources.get(target.name)) and not runtime_named(target.runtime).DEVICE_PACKAGES:
            raise EdgesmithError(f"target {target.name} ({target.runtime}) cannot be timed on a device (SSH or a Ray node): "
                                 "its latency is an estimate (a microcontroller runs firmware, not Python)",
                                 f"drop the --device (or the profile's device or ray_resource key) for {target.name}")
    devices: dict[str, Device] = {}
    for url in dict.fromkeys([*urls.values(), *resources.values()]):
        served = [target for target in targets if url in (urls.get(target.name), resources.get(target.name))]
        device = open_device(url) if url in urls.values() else _ray_node(url)
        device.require({package for target in served for package in runtime_named(target.runtime).DEVICE_PACKAGES},
                       f"for target {', '.join(target.name for target in served)}")
        devices.update({target.name: device for target in served})
    return devices


def _ray_node(resource: str) -> Device:
    from toolkit.devices.ray_node import connect

    return connect(resource)


def measure(device: Device, path: Path, x: np.ndarray, y: np.ndarray, settings: dict[str, Any], target: Target,
            device_accuracy: bool = False) -> dict[str, Any]:
    """The timing fields of one artifact's record, measured on `device`; a failed measurement
    becomes `latency_ms: None` with `latency_error`, never a figure from somewhere else."""
    delegate = target.accelerator.delegate if device.remote else None  # the host times a stand-in CPU
    where = where_timed(device, target)
    try:
        timing = device.benchmark(path, x, settings["runs"], settings["threads"], settings["batch"], delegate,
                                  settings["budget_s"], settings["target_width"])
        if device_accuracy and device.remote:
            timing["device_accuracy"] = _device_accuracy(device, path, x, y)
    except MeasurementFailed as failure:
        return {**not_measured(settings), **where, "latency_error": str(failure)}
    return {**timing, **where}


def where_timed(device: Device, target: Target) -> dict[str, Any]:
    """The record fields that say where `target`'s timing ran and whether that is its hardware."""
    return {"latency_measured_on": device.measured_on(target), "latency_on_device": device.on_device(target),
            "device_host": device.facts["hostname"] if device.remote else None}


def not_measured(settings: dict[str, Any]) -> dict[str, Any]:
    """The timing fields of an artifact whose measurement failed."""
    return {"latency_ms": None, "latency_method": None, "threads": settings["threads"], "batch": 1, "runs": None,
            "throughput": None, "latency_ms_all_cores": None, "peak_memory_mb": None, "latency_cpu": None}


def _device_accuracy(device: Device, path: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The test split run on the device, against this machine's outputs of the same file: an fp16
    GPU or a delegate that computes differently shows up here and nowhere else."""
    import numpy as np

    from toolkit.benchmark.harness import all_cores
    from toolkit.benchmark.runners import open_runner, predict
    from toolkit.top1 import top1

    remote = device.predict(path, x)
    local = predict(open_runner(path, all_cores()), x)
    return {
        "accuracy": float((top1(remote) == y).mean()),
        "agreement_with_host": float((top1(remote) == top1(local)).mean()),
        "max_abs_diff_vs_host": float(np.abs(remote - local).max()),
        "samples": len(x),
    }
