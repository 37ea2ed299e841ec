"""A device that is a node of the Ray cluster: a target profile names the node's custom resource
(`ray_resource = "device:rpi4"`), and its timings are Ray tasks that only that node can run.

A board joins with `ray start --address=HEAD --resources='{"device:rpi4": 1}'`. Each task holds
one unit of the resource, so a node advertising 1 runs one measurement at a time. The file and
its inputs travel through Ray's object store; the measurement is the same device_bench module
an SSH device runs (ray_kit.py), so the node needs Ray, numpy and its runtime, not edgesmith.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.benchmark.device_bench import DEFAULT_BUDGET_S, last_json
from toolkit.benchmark.device_runners import runtime_suffix
from toolkit.cpu_features import describe
from toolkit.devices import MeasurementFailed, device_packages
from toolkit.devices.probed import ProbedDevice, kit_sources, plan_arguments
from toolkit.errors import EdgesmithError
from toolkit.files import float32_npy

if TYPE_CHECKING:
    import numpy as np


def connect(resource: str) -> RayNodeDevice:
    """Find the node advertising `resource` and read what it is (probe.py, run there)."""
    from toolkit.scale import require_ray

    ray = require_ray(f"a target with ray_resource = \"{resource}\"")
    if not ray.is_initialized():
        raise EdgesmithError(f"a target is timed on the Ray node with resource '{resource}', but this run does not use Ray",
                             "run with executor = \"ray\" (--executor ray) and the cluster's ray_address")
    if resource not in ray.cluster_resources():
        raise EdgesmithError(f"no node of the Ray cluster advertises the resource '{resource}'",
                             f"start the device's node with: ray start --address=HEAD_ADDRESS --resources='{{\"{resource}\": 1}}'")
    device = RayNodeDevice(resource)
    result = device.run(["probe.py", *device_packages()], {})
    facts = last_json(result["stdout"])
    if result["returncode"] != 0 or "python" not in facts:
        raise EdgesmithError(f"the Ray node with '{resource}' could not run edgesmith's probe ({_last_line(result['stderr'])})",
                             "check numpy and the runtime packages in that node's Python")
    device.facts = {**facts, "ray_node_id": result["node_id"], "ray_node_ip": result["node_ip"]}
    return device


class RayNodeDevice(ProbedDevice):
    """A connected Ray device node: measurements run there with the same code as here."""

    install_fix = "on that node: pip install {packages}"

    def __init__(self, resource: str) -> None:
        self.resource, self.url = resource, f"ray://{resource}"
        self.facts: dict[str, Any] = {}
        self._files = kit_sources()

    def identity(self) -> str:
        """What a cached measurement depends on: the resource, the node's CPU, Python and runtimes."""
        facts = self.facts
        return json.dumps([self.url, facts["hostname"], describe(facts["cpu"]), facts["python"], facts["runtimes"]])

    @property
    def via(self) -> str:
        return f"Ray (node {self.facts['ray_node_ip']} {self.facts['ray_node_id'][:12]}, resource {self.resource})"

    @property
    def interpreter(self) -> str:
        return "the Ray node's Python"

    def benchmark(self, path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                  delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S,
                  target_width: float = 0.0) -> dict[str, Any]:
        """device_bench's method on the node, on the inputs the local harness would use."""
        model, blobs = _model_and_inputs(path, sample[: max(batch, 1)])
        arguments = ["device_bench.py", model, "--inputs", "inputs.npy", "--runs", str(runs), "--threads", str(threads),
                     "--batch", str(batch), *(["--delegate", delegate] if delegate else []),
                     *plan_arguments(budget_s, target_width), "--json"]
        result = self.run(arguments, blobs)
        measured = last_json(result["stdout"])
        if "error" in measured:
            raise MeasurementFailed(f"{self.url}: {measured['error']}", measured["fix"])
        if result["returncode"] != 0 or not measured:
            raise MeasurementFailed(f"{self.url}: the benchmark failed on the node ({_last_line(result['stderr'])})",
                                    "check that the file runs with that node's runtime")
        return {**measured, "latency_cpu": describe(self.facts["cpu"])}

    def predict(self, path: Path, x: np.ndarray) -> np.ndarray:
        """Scores of every sample, computed on the node."""
        import base64

        import numpy as np

        model, blobs = _model_and_inputs(path, x)
        result = self.run(["device_bench.py", model, "--inputs", "inputs.npy", "--predict", "--json"], blobs)
        scores = last_json(result["stdout"]).get("scores_npy")
        if scores is None:
            raise MeasurementFailed(f"{self.url}: the node could not run {Path(path).name} ({_last_line(result['stderr'])})",
                                    "check that the file runs with that node's runtime")
        return np.load(io.BytesIO(base64.b64decode(scores)))

    def run(self, arguments: list[str], blobs: dict[str, bytes]) -> dict[str, Any]:
        """One run of the device modules on the node holding the resource."""
        import ray
        import ray.cloudpickle

        from toolkit.devices import ray_kit

        ray.cloudpickle.register_pickle_by_value(sys.modules[ray_kit.__name__])
        task = ray.remote(ray_kit.run_kit).options(resources={self.resource: 1}, num_cpus=1, max_retries=0,
                                                   name=f"bench:{self.resource}")
        try:
            return ray.get(task.remote(self._files, blobs, arguments))
        except ray.exceptions.RayError as error:
            raise MeasurementFailed(f"{self.url}: the Ray task was lost ({type(error).__name__})",
                                    "check the node (`ray status`); the next run measures this file again") from None


def _model_and_inputs(path: Path, x: np.ndarray) -> tuple[str, dict[str, bytes]]:
    """The file's name on the node and the blobs a device_bench call needs (the file, inputs.npy)."""
    model = f"model{runtime_suffix(path)}"
    return model, {model: Path(path).read_bytes(), "inputs.npy": float32_npy(x)}


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else "no message"
