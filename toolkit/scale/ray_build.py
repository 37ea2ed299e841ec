"""The build phase on Ray: each variant chain (its passes, then its exports for every target)
is one Ray task.

A task builds in a scratch folder laid out like the run folder, with the stages of a local run,
so its files and cache markers are exactly the ones a local build writes. It returns them
through Ray's object store (no shared file system); only the driver writes the run folder, files
first and markers after, so a Ray run and a local run resume each other's cache and an
interrupted run keeps every variant that came back. Timing is not done here: the driver times
every file after the build phase, so no build competes with a measurement on the same machine.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import EdgesmithError, first_line

if TYPE_CHECKING:
    import numpy as np

    from toolkit.config import Experiment, Variant
    from toolkit.data import Dataset
    from toolkit.pipeline import Run
    from toolkit.targets import Target

BUILD_RETRIES = 2  # a worker or node that dies mid-task: Ray runs the task again this many times
BASELINE_FILE = "baseline/model.h5"


@dataclass(frozen=True)
class BuildInputs:
    """What every build task needs, put into the object store once per run."""

    experiment: Experiment
    data: Dataset
    targets: tuple[Target, ...]
    calibration: np.ndarray | None
    baseline_key: str
    baseline_params: int
    baseline_model: bytes


def build_on_ray(state: Run, plan: list[tuple[Variant, tuple]]) -> dict[str, str]:
    """Build, on the Ray cluster, every export the run folder's cache lacks; write the results
    into the run folder as tasks finish. Returns {variant id: reason} for variants that could
    not be built (the run reports them as skipped; the next run tries them again)."""
    import ray

    from toolkit.passes import chain_id

    exp = state.experiment
    inputs = ray.put(BuildInputs(exp, state.data, tuple(state.targets), state.calibration, state.baseline_key,
                                 state.baseline_params, (state.run_dir / BASELINE_FILE).read_bytes()))
    task = ray.remote(_build_variant)
    pending: dict[Any, str] = {}
    for variant, steps in plan:
        missing = _missing_exports(state, variant, steps)
        if missing:
            variant_id = chain_id(steps)
            options = {"name": f"build:{variant_id}", "num_cpus": exp.ray_num_cpus, "num_gpus": exp.ray_num_gpus,
                       "max_retries": BUILD_RETRIES, "retry_exceptions": False}
            pending[task.options(**options).remote(inputs, steps, missing, _cached_model(state, steps))] = variant_id
    if pending:
        state.log(f"[ray] building {len(pending)} variant(s) as Ray tasks")
    failed: dict[str, str] = {}
    try:
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            variant_id = pending.pop(done)
            reason = _adopt(state, variant_id, ray, done)
            if reason:
                failed[variant_id] = reason
    finally:
        for ref in pending:  # Ctrl-C or an error: stop what is still running on the cluster
            ray.cancel(ref, force=True)
    return failed


def task_threads(experiment: Experiment) -> int:
    """TensorFlow threads in a build task: `train_threads`, else the task's CPU share (threads
    beyond it would compete with the other tasks on the machine)."""
    return experiment.train_threads or max(1, round(experiment.ray_num_cpus))


def _missing_exports(state: Run, variant: Variant, steps: tuple) -> list[tuple[str, str]]:
    """(target name, precision) of each of the variant's exports without a finished cache entry."""
    from toolkit.passes import chain_id
    from toolkit.stages import export_location, variant_exports, variant_key

    variant_id, model_key = chain_id(steps), variant_key(state, steps)
    return [(target.name, precision) for target, precision in variant_exports(state.targets, variant, steps)
            if state.cache.get(export_location(state, variant_id, model_key, target, precision)[1]) is None]


def _cached_model(state: Run, steps: tuple) -> dict[str, Any]:
    """The variant's already built model (marker and files), so a task exports it without training again."""
    from toolkit.stages import variant_key

    key = variant_key(state, steps)
    if not steps or state.cache.get(key) is None:
        return {}
    return state.cache.export_entry(key)


def _adopt(state: Run, variant_id: str, ray: Any, ref: Any) -> str | None:
    """Write one finished task's files and markers into the run folder; a reason if it failed."""
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, EdgesmithError):  # the same input error a local run stops on
            raise error.cause from None
        return f"its build failed on Ray: {type(error.cause).__name__}: {first_line(error.cause)}"
    except ray.exceptions.RayError as error:  # the worker or its node died, after BUILD_RETRIES
        return f"its Ray task was lost ({type(error).__name__}); the next run builds it again"
    if "not_applicable" in result:
        return result["not_applicable"]
    for line in result["log"]:
        state.log(line)
    state.cache.import_entries(result["entries"])
    state.log(f"[ray] {variant_id}: built on node {result['node']} in {result['seconds']:.1f} s")
    return None


def _build_variant(inputs: BuildInputs, steps: tuple, exports: list[tuple[str, str]],
                   cached_model: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Ray worker: the run's own stages in a scratch run folder; returns its new cache
    entries (markers with their files' bytes) and its log."""
    import ray

    from toolkit._tf import limit_threads
    from toolkit.cache import StageCache
    from toolkit.model_files import load_saved
    from toolkit.passes import PassNotApplicable, chain_id
    from toolkit.pipeline import Run
    from toolkit.stages import VariantModel, export_stage, variant_key

    started = time.time()
    limit_threads(task_threads(inputs.experiment))
    with tempfile.TemporaryDirectory(prefix="edgesmith-ray-") as folder:
        run_dir = Path(folder)
        (run_dir / BASELINE_FILE).parent.mkdir(parents=True)
        (run_dir / BASELINE_FILE).write_bytes(inputs.baseline_model)
        cache = StageCache(run_dir, enabled=not inputs.experiment.force)
        if cached_model:
            cache.import_entries([cached_model])
        lines: list[str] = []
        state = Run(inputs.experiment, run_dir, inputs.data, list(inputs.targets), cache, lines.append,
                    baseline_key=inputs.baseline_key, baseline_params=inputs.baseline_params,
                    calibration=inputs.calibration)
        baseline = lru_cache(maxsize=1)(lambda: load_saved(run_dir / BASELINE_FILE))
        built = VariantModel(state, chain_id(steps), variant_key(state, steps), steps, baseline)
        targets = {target.name: target for target in inputs.targets}
        try:
            for target_name, precision in exports:
                export_stage(state, built, targets[target_name], precision)
        except PassNotApplicable as exc:
            return {"not_applicable": str(exc)}
        carried = {cached_model["key"]} if cached_model else set()
        entries = [cache.export_entry(key) for key in cache.keys() if key not in carried]
    node = ray.get_runtime_context().get_node_id()
    return {"entries": entries, "log": lines, "node": node[:12], "seconds": time.time() - started}
