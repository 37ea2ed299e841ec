"""The Optuna study behind `edgesmith search`: ask a trial (or a batch, on Ray), measure it with
the run's cached stages, tell Optuna its objective values and whether it meets the budget.

The study lives in a database (SQLite in the run folder unless `storage` names another), so a
search resumes where it stopped and several machines can share one study. Completed trials count
toward the requested number; a trial left RUNNING by a search that died is marked FAIL and its
parameters are asked again. The run folder (results, reports, best/, search.json) is rewritten
after every batch, so an interrupted search still has a report of what it finished.
"""
from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from toolkit.config import Experiment
from toolkit.errors import EdgesmithError, first_line
from toolkit.records import Record
from toolkit.search import require_optuna
from toolkit.search.evaluate import Candidate, Evaluator
from toolkit.search.space import SearchSpace
from toolkit.task import REGRESSION

if TYPE_CHECKING:
    from toolkit.pipeline import Run

Log = Callable[[str], None]
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # who runs a trial: how a later search tells a dead one from a live one
DB_FILE = "search.db"
NO_BUDGET = 0.0  # a constraint value that is always met (Optuna: ≤ 0 is feasible)


def search(experiment: Experiment, space: SearchSpace, trials: int, target: str | None = None,
           storage: str | None = None, timeout: float | None = None, log: Log = print) -> tuple[Path, dict[str, Any]]:
    """Run (or resume) the search until `trials` trials are complete or `timeout` seconds have
    passed; return the run folder and the search document (search.json)."""
    from toolkit.pipeline import open_run
    from toolkit.stages import baseline_stage

    if experiment.task == REGRESSION:
        raise EdgesmithError("search's objectives and constraint are accuracy, latency and size: a regression is not "
                             "supported by search yet", "compare its chains with `edgesmith run --variant ...`, which scores MAE")
    optuna = require_optuna()
    experiment = dataclasses.replace(experiment, targets=(_target(experiment, target),))
    started = time.time()
    deadline = time.monotonic() + timeout if timeout else math.inf
    with open_run(experiment, log, needs_passes=True) as (state, user_model, _):
        precisions = _precisions(state, space)
        url = storage or f"sqlite:///{(state.run_dir / DB_FILE).resolve()}"
        study = _open_study(optuna, url, f"{experiment.run_name}-{experiment.targets[0]}", space, experiment.seed, trials)
        _fail_abandoned(optuna, study, log)
        state.records = _restored_records(optuna, study, state.run_dir)
        evaluator = Evaluator(state, baseline_stage(state, user_model))
        batch, failures = _batch_size(experiment), 0
        document = _write(state, study, space, storage or DB_FILE, started)
        while (done := _count(optuna, study, "COMPLETE")) < trials and time.monotonic() < deadline and failures < trials:
            failures += _run_batch(optuna, study, evaluator, space, precisions, min(batch, trials - done), log)
            document = _write(state, study, space, storage or DB_FILE, started)
        if failures >= trials:
            log(f"[search] stopped: {failures} trials failed in this search (see search.json for the reasons)")
    return state.run_dir, document


def _run_batch(optuna: Any, study: Any, evaluator: Evaluator, space: SearchSpace, precisions: tuple[str, ...],
               size: int, log: Log) -> int:
    """Ask `size` trials, measure them, tell Optuna; returns how many failed. Trials not told
    when something stops the batch (Ctrl-C, an error) are marked FAIL and queued to be asked again."""
    from toolkit.passes import chain_id, parse_chain

    asked, told, failed = [], set(), 0
    try:
        for _ in range(size):
            trial = study.ask()
            chain, precision = space.sample(trial, precisions)
            trial.set_user_attr("worker", WORKER)
            trial.set_user_attr("chain", chain)
            trial.set_user_attr("precision", precision)
            trial.set_user_attr("variant", chain_id(parse_chain(chain)))
            asked.append((trial, Candidate(tuple(chain), precision)))
        outcomes = evaluator.evaluate([candidate for _, candidate in asked])
        for (trial, candidate), outcome in zip(asked, outcomes):
            failed += isinstance(outcome, str)
            _tell(optuna, study, trial, outcome, evaluator.state, log)
            told.add(trial.number)
    finally:
        for trial, _ in asked:
            if trial.number not in told:
                _retry(optuna, study, trial.number, trial.params)
    return failed


def _tell(optuna: Any, study: Any, trial: Any, outcome: Record | str, state: Run, log: Log) -> None:
    """Objective values and budget constraints of a measured trial, or FAIL with the reason."""
    label = f"[search] trial {trial.number}: {trial.user_attrs['variant']} {trial.user_attrs['precision']}"
    if isinstance(outcome, str):
        trial.set_user_attr("reason", outcome)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log(f"{label} failed: {outcome}")
        return
    objectives = study.user_attrs["objectives"]
    values = [_objective(outcome, name) for name in objectives]
    constraints = _constraints(outcome, state.experiment)
    trial.set_user_attr("record", outcome.to_dict())
    trial.set_user_attr("constraints", constraints)
    study.tell(trial, values)
    shown = ", ".join(f"{name} {value:.4g}" for name, value in zip(objectives, values))
    log(f"{label}: {shown}" + ("" if all(c <= 0 for c in constraints) else " (over the budget)"))


def _objective(record: Record, name: str) -> float:
    return {"accuracy": lambda: record.accuracy, "latency": lambda: record.latency_ms["p50"],
            "size": lambda: float(record.size_bytes)}[name]()


def _constraints(record: Record, experiment: Experiment) -> list[float]:
    """How far the record is over each budget (≤ 0: within it); a limit of 0 means none."""
    latency, size = experiment.max_latency_ms, experiment.max_size_kb
    return [
        record.accuracy_drop_pp - experiment.max_accuracy_drop,
        record.latency_ms["p50"] - latency if latency else NO_BUDGET,
        record.size_bytes / 1024 - size if size else NO_BUDGET,
    ]


def _constraints_of(trial: Any) -> list[float]:
    """Optuna's constraints_func: what _tell stored (a failed trial has none and counts as infeasible)."""
    return trial.user_attrs.get("constraints", [math.inf] * 3)


def _open_study(optuna: Any, url: str, name: str, space: SearchSpace, seed: int, trials: int) -> Any:
    """Create or load the study; its objectives must be the space's. The sampler's seed moves on
    with the trials already in the study, so a resumed search does not redraw its first points.
    TPE starts modelling after a third of the budget (at most its usual 10 random trials): with
    Optuna's default a search of 10 trials or fewer would be random sampling."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        storage = optuna.storages.RDBStorage(url)
        study = optuna.create_study(storage=storage, study_name=name, directions=space.directions, load_if_exists=True)
    except (SQLAlchemyError, ValueError, ImportError) as error:
        raise EdgesmithError(f"cannot open the study database {_masked(url)} ({first_line(error)})",
                             "pass --storage with a database URL, e.g. sqlite:///search.db or postgresql://user@host/db") from None
    stored = study.user_attrs.get("objectives")
    if stored is None:
        study.set_user_attr("objectives", list(space.objectives))
    elif stored != list(space.objectives):
        raise EdgesmithError(f"study '{name}' in {_masked(url)} optimizes {stored}, the experiment asks for {list(space.objectives)}",
                             "set [search] objectives back, or give the experiment another name (or --storage)")
    with warnings.catch_warnings():  # constraints_func: experimental in Optuna 4, deprecated (still honored) in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), constraints_func=_constraints_of,
                                                   n_startup_trials=min(10, max(2, trials // 3)))
    return study


def _fail_abandoned(optuna: Any, study: Any, log: Log) -> None:
    """Mark FAIL the RUNNING trials whose search is gone, and ask their parameters again. A trial
    of a live search on another machine (or process) is left alone: it will be told."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _abandoned(trial.user_attrs.get("worker")):
            _retry(optuna, study, trial.number, trial.params)
            log(f"[search] trial {trial.number} was left running by an interrupted search: marked failed, asked again")


def _abandoned(worker: str | None) -> bool:
    """A worker "host:pid" that is this process or a process no longer alive on this host; no worker: abandoned."""
    if not worker:
        return True
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return False
    if worker == WORKER:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def _retry(optuna: Any, study: Any, number: int, params: dict[str, Any]) -> None:
    study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    if params:
        study.enqueue_trial(params)


def _restored_records(optuna: Any, study: Any, run_dir: Path) -> list[Record]:
    """The records of completed trials whose files are in this run folder (a shared study's
    trials measured elsewhere are in search.json, not in results.json)."""
    records: dict[str, Record] = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        stored = trial.user_attrs.get("record")
        file = run_dir / stored["path"] if stored else None
        if file is not None and file.is_file() and file.stat().st_size == stored["size_bytes"]:
            records.setdefault(stored["path"], Record.from_dict(stored))
    return list(records.values())


def _write(state: Run, study: Any, space: SearchSpace, storage: str, started: float) -> dict[str, Any]:
    """search.json, then the run folder's outputs with the search summary in run.json and the report."""
    from toolkit.files import write_json
    from toolkit.outputs import write_outputs
    from toolkit.search.summary import search_document

    document = search_document(study, space.objectives, space.directions, state.targets[0].name, _masked(storage))
    write_json(state.run_dir / "search.json", document)
    write_outputs(state, started, extra={"search": document})
    return document


def _count(optuna: Any, study: Any, state: str) -> int:
    return len(study.get_trials(deepcopy=False, states=(getattr(optuna.trial.TrialState, state),)))


def _target(experiment: Experiment, target: str | None) -> str:
    if target:
        return target
    if len(experiment.targets) > 1:
        raise EdgesmithError(f"the experiment has {len(experiment.targets)} targets ({', '.join(experiment.targets)}); "
                             "a search optimizes one", f"pass --target, e.g. --target {experiment.targets[0]}")
    return experiment.targets[0]


def _precisions(state: Run, space: SearchSpace) -> tuple[str, ...]:
    """The precisions a trial may draw: the space's, each supported by the target; by default the
    experiment's precisions the target supports."""
    target = state.targets[0]
    if space.qat and True in space.qat and "int8" not in target.precisions:
        raise EdgesmithError(f"[search] qat needs int8, which target {target.name} does not export", "set qat = [false]")
    if space.precision is None:
        chosen = tuple(p for p in state.experiment.precisions if p in target.precisions)
        if not chosen:
            raise EdgesmithError(f"target {target.name} supports none of the experiment's precisions",
                                 f"set [search] precision to some of {', '.join(target.precisions)}")
        return chosen
    unsupported = [p for p in space.precision if p not in target.precisions]
    if unsupported:
        raise EdgesmithError(f"target {target.name} has no {', '.join(unsupported)} export",
                             f"set [search] precision to some of {', '.join(target.precisions)}")
    return space.precision


def _batch_size(experiment: Experiment) -> int:
    """Trials measured together: one locally; in processes one per worker; on Ray as many as
    the cluster builds at once."""
    if experiment.executor == "processes":
        from toolkit.scale.pool_build import pool_size

        return pool_size(experiment, os.cpu_count() or 1)
    if experiment.executor != "ray":
        return 1
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1) // experiment.ray_num_cpus))


def _masked(url: str) -> str:
    """A database URL without its password (it goes into search.json and messages)."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
