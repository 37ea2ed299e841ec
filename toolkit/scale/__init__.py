"""Building a run's variants in parallel: in local processes (`executor = "processes"`) or on
Ray (`executor = "ray"`, the optional `ray` extra).

`session(experiment)` starts or joins Ray for the length of a run (a no-op otherwise);
`build_phase` builds every variant with the run's executor before anything is timed
(pool_build.py, ray_build.py; the task itself is build_task.py). Ray is imported only when a
run asks for it, so the default install needs no Ray.
"""
from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Callable, Iterator

from toolkit.errors import EdgesmithError

if TYPE_CHECKING:
    from toolkit.config import Experiment, Variant
    from toolkit.pipeline import Run

EXECUTORS = ("local", "processes", "ray")
INSTALL_HINT = 'install the extra: pip install "edgesmith[ray]"'


def build_phase(state: Run, plan: list[tuple[Variant, tuple]]) -> dict[str, str]:
    """Build the plan's variants with the run's executor; {variant id: why it could not be
    built}. The local executor builds inside the stage loop instead: nothing to do here."""
    if state.experiment.executor == "ray":
        from toolkit.scale.ray_build import build_on_ray

        return build_on_ray(state, plan)
    if state.experiment.executor == "processes":
        from toolkit.scale.pool_build import build_in_processes

        return build_in_processes(state, plan)
    return {}


def require_ray(why: str) -> Any:
    """The `ray` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise EdgesmithError(f"{why} needs Ray, which is not installed", INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def session(experiment: Experiment, log: Callable[[str], None]) -> Iterator[None]:
    """Ray for the length of one run: join `ray_address`, or start a local instance sized to this
    machine; stop what this run started when it ends, Ctrl-C included."""
    if experiment.executor != "ray":
        yield
        return
    ray = require_ray("executor = \"ray\"")
    if ray.is_initialized():  # the caller (a notebook, a test) already holds a connection: use it
        check_feasible(ray, experiment)
        yield
        return
    address = experiment.ray_address or None
    try:
        context = ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                           **({} if address else {"num_cpus": os.cpu_count()}))
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EdgesmithError(f"cannot join the Ray cluster at {address or 'a new local instance'} ({error})",
                             "start one with `ray start --head` and pass its address (ray_address = \"HOST:6379\")") from None
    nodes = [node for node in ray.nodes() if node["Alive"]]
    try:
        check_feasible(ray, experiment)
    except EdgesmithError:
        ray.shutdown()
        raise
    log(f"[ray] {'joined ' + context.address_info['gcs_address'] if address else 'started a local Ray instance'}: "
        f"{len(nodes)} node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs")
    try:
        yield
    finally:
        ray.shutdown()


def check_feasible(ray: Any, experiment: Experiment) -> None:
    """A task no node can hold would wait forever: say so instead."""
    wanted = {"CPU": experiment.ray_num_cpus, "GPU": experiment.ray_num_gpus}
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if not any(all(node.get(kind, 0) >= amount for kind, amount in wanted.items() if amount) for node in nodes):
        largest = max(((node.get("CPU", 0), node.get("GPU", 0)) for node in nodes), default=(0, 0))
        raise EdgesmithError(f"no node of the Ray cluster has {experiment.ray_num_cpus:g} CPUs and {experiment.ray_num_gpus:g} GPUs "
                             f"for one build task (the largest has {largest[0]:g} CPUs, {largest[1]:g} GPUs)",
                             "lower ray_num_cpus / ray_num_gpus, or join a cluster with such nodes (the local instance "
                             "edgesmith starts sees no GPU: the command hides GPUs)")
