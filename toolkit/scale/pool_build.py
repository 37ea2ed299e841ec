"""The build phase in local processes (`executor = "processes"`): each variant chain is one
task of a process pool on this machine, `build_task.build_variant` as on Ray, with the
machine's cores shared between the workers. No extra package is needed.

Workers are spawned (not forked: TensorFlow's threads do not survive a fork), so each pays
TensorFlow's import once; a chain's training and conversions are long next to that.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from toolkit.errors import EdgesmithError, first_line
from toolkit.scale.build_task import adopt, build_inputs, build_variant, cached_models, missing_exports, task_threads

if TYPE_CHECKING:
    from toolkit.config import Variant
    from toolkit.pipeline import Run


def pool_size(experiment: Any, tasks: int) -> int:
    """`build_workers`, else one per core; never more than there are tasks."""
    return max(1, min(experiment.build_workers or os.cpu_count() or 1, tasks))


def build_in_processes(state: Run, plan: list[tuple[Variant, tuple]]) -> dict[str, str]:
    """Build every export the run folder's cache lacks in a pool of local processes; write the
    results into the run folder as tasks finish. Returns {variant id: reason} for variants that
    could not be built (the run reports them as skipped; the next run tries them again)."""
    from toolkit.passes import chain_id

    work = [(chain_id(steps), steps, missing) for variant, steps in plan
            if (missing := missing_exports(state, variant, steps))]
    if not work:
        return {}
    workers = pool_size(state.experiment, len(work))
    inputs = build_inputs(state, task_threads(state.experiment, (os.cpu_count() or 1) / workers))
    state.log(f"[build] building {len(work)} variant(s) in {workers} process(es), "
              f"{inputs.threads} TensorFlow thread(s) each")
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    pending: dict[Future, str] = {
        pool.submit(build_variant, inputs, steps, missing, cached_models(state, steps)): variant_id
        for variant_id, steps, missing in work
    }
    failed: dict[str, str] = {}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                variant_id = pending.pop(future)
                reason = _adopt(state, variant_id, future)
                if reason:
                    failed[variant_id] = reason
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)
        if pending:  # Ctrl-C or an error: stop the builds still running
            for process in set(multiprocessing.active_children()) - before:
                process.terminate()
    return failed


def _adopt(state: Run, variant_id: str, future: Future) -> str | None:
    """Write one finished task's files and markers into the run folder; a reason if it failed."""
    error = future.exception()
    if isinstance(error, EdgesmithError):  # the same input error a local run stops on
        raise error
    if isinstance(error, BrokenProcessPool):
        return "its build process died (killed, or out of memory?); the next run builds it again"
    if error is not None:
        return f"its build failed: {type(error).__name__}: {first_line(error)}"
    return adopt(state, variant_id, future.result(), "in a local process")
