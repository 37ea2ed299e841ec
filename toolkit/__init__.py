"""edgesmith: compress, convert, check and benchmark Keras models for edge targets.

Public API (heavy libraries load only when a function is called):
    run(experiment, data=None)      the whole pipeline → RunResult (records, best picks, folder)
    check(path, target)             will this file run fully on the target? → CompatibilityReport
    bench(path, threads=, batch=, runs=, inputs=)   latency, throughput, memory → dict
    convert(model, target, precision, calibration=)  export one model file → Path
    select(run_or_records, target, max_accuracy_drop=…)  the artifact to ship → Selection
    explain(model, target, fallback=)  per-layer int8 error, worst layer kept float → Explanation
    load_model(path)                a Keras model file as a tf_keras model (code refused by default)
    Experiment, load_experiment(path), load_target(name), Record, load_results(run_dir)
"""
from __future__ import annotations

from toolkit.api import RunResult, bench, check, convert, explain, load_model, run, select
from toolkit.config import Experiment, load_experiment
from toolkit.errors import EdgesmithError
from toolkit.records import Record, load_results
from toolkit.targets import Target, load_target

__all__ = [
    "EdgesmithError", "Experiment", "Record", "RunResult", "Target", "bench", "check", "convert",
    "explain", "load_experiment", "load_model", "load_results", "load_target", "run", "select",
]
