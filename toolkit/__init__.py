"""edgesmith: compress, convert, check and benchmark Keras models for edge targets.

Public API (heavy libraries load only when a function is called):
    run(experiment)          run the whole pipeline, return the run folder
    load_experiment(path)    read a TOML experiment file
    Experiment               the experiment options
    load_target(name)        a target profile from targets/*.toml
"""
from __future__ import annotations

from toolkit.config import Experiment, load_experiment
from toolkit.errors import EdgesmithError

__all__ = ["EdgesmithError", "Experiment", "load_experiment", "load_target", "run"]


def run(experiment: Experiment):
    """Run the pipeline for `experiment`; returns the run folder (a Path)."""
    from toolkit.pipeline import run as run_pipeline

    return run_pipeline(experiment)


def load_target(name: str):
    """Load a target profile by name or TOML path."""
    from toolkit.targets import load_target as load

    return load(name)
