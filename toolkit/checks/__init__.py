"""Pre-flight compatibility check: will this model file run fully on a target's accelerator?

`check_artifact(path, target)` reads any model file a registered runtime recognises, places
every op on the target's accelerator or its CPU fallback using the target profile's data, and,
for targets with a real compiler (the Edge TPU), runs that compiler where it is installed.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from toolkit.checks.report import CompatibilityReport, OpPlacement
from toolkit.errors import EdgesmithError
from toolkit.targets import Target, format_target_list

__all__ = ["CompatibilityReport", "OpPlacement", "check_artifact", "compiler_available", "compiler_path",
           "format_target_list"]


def check_artifact(path: Path, target: Target) -> CompatibilityReport:
    """Check one exported model file against one target; bad input raises EdgesmithError."""
    from toolkit.runtimes import reads_file, runtime_for_file, runtime_named

    path = Path(path)
    runtime, expected = runtime_for_file(path), runtime_named(target.runtime)
    if runtime is not expected and not reads_file(expected, path):
        raise EdgesmithError(
            f"{path} is {runtime.LABEL} model but target '{target.name}' runs {expected.NAME} ({expected.SUFFIX} files)",
            f"check it against a target whose runtime reads {runtime.SUFFIX} files (see `edgesmith targets`)",
        )
    return expected.check(path, target)


def compiler_available(target: Target) -> bool:
    """Whether the target's own compiler is installed (its verdict then replaces ours)."""
    return bool(target.accelerator.compiler and compiler_path(target.accelerator.compiler))


def compiler_path(name: str) -> str | None:
    """A compiler on PATH, or installed next to this Python (a virtual environment's console
    script, e.g. Vela from the `mcu` extra, when the environment is not activated)."""
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
