"""The build phase on Ray: each variant chain (its passes, then its exports for every target)
is one Ray task running `build_task.build_variant`; its results come back through Ray's
object store, so no shared file system is needed."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit.errors import EdgesmithError, first_line
from toolkit.scale.build_task import adopt, build_inputs, build_variant, cached_models, missing_exports, task_threads

if TYPE_CHECKING:
    from toolkit.config import Variant
    from toolkit.pipeline import Run

BUILD_RETRIES = 2  # a worker or node that dies mid-task: Ray runs the task again this many times


def build_on_ray(state: Run, plan: list[tuple[Variant, tuple]]) -> dict[str, str]:
    """Build, on the Ray cluster, every export the run folder's cache lacks; write the results
    into the run folder as tasks finish. Returns {variant id: reason} for variants that could
    not be built (the run reports them as skipped; the next run tries them again)."""
    import ray

    from toolkit.passes import chain_id

    exp = state.experiment
    inputs = ray.put(build_inputs(state, task_threads(exp, exp.ray_num_cpus)))
    task = ray.remote(_on_node)
    pending: dict[Any, str] = {}
    for variant, steps in plan:
        missing = missing_exports(state, variant, steps)
        if missing:
            variant_id = chain_id(steps)
            options = {"name": f"build:{variant_id}", "num_cpus": exp.ray_num_cpus, "num_gpus": exp.ray_num_gpus,
                       "max_retries": BUILD_RETRIES, "retry_exceptions": False}
            pending[task.options(**options).remote(inputs, steps, missing, cached_models(state, steps))] = variant_id
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


def _on_node(*args: Any) -> dict[str, Any]:
    """The build task, plus the node it ran on (for the log)."""
    import ray

    return {**build_variant(*args), "node": ray.get_runtime_context().get_node_id()[:12]}


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
    return adopt(state, variant_id, result, f"on node {result.get('node', '?')}")
