"""manifest.json: what produced this run, so its numbers can be reproduced or questioned."""
from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.pipeline import Run

CORE_LIBRARIES = ("edgesmith", "tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy", "scikit-learn")


def build_manifest(state: Run) -> dict[str, Any]:
    return {
        "config": state.experiment.to_dict(),
        "dataset": {
            "name": state.data.name,
            "fingerprint": state.data.fingerprint,
            "preprocessing": state.data.preprocessing,
            "splits": {
                "train": len(state.data.x_train),
                "validation": len(state.data.x_val),
                "test": len(state.data.x_test),
            },
        },
        "artifacts": {record["path"]: record["sha256"] for record in state.records},
        "libraries": library_versions(),
        "machine": machine(),
    }


def library_versions() -> dict[str, str | None]:
    from toolkit.runtimes import runtime_packages

    versions: dict[str, str | None] = {}
    for name in dict.fromkeys(CORE_LIBRARIES + runtime_packages()):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    from toolkit.cpu_features import cpu_features

    features = cpu_features()
    return {
        "cpu": features["model"],
        "cpu_features": features,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
