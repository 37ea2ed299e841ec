"""Runtimes as plug-ins: one module per runtime, registered in `RUNTIMES`.

A runtime module knows its file format (`SUFFIX`, `sniff`), what its target profiles may say
(`TARGET_KEYS`, `ACCELERATOR_KEYS`, `validate_profile`), how to export a variant for a target
(`export`, with `export_spec` naming every setting that changes the bytes, for the cache), how
to run a file (`open_runner`), how to check it against a target (`check`), whether its latency
is estimated (`estimated_timing`: for a device nothing here can run; None where files are timed,
here or on the device) and which runtime-specific facts join each record (`record_extras`). Nothing outside these modules names
a runtime: adding one is a new module plus one line in `RUNTIMES`.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from toolkit.errors import EdgesmithError
from toolkit.runtimes import litert, onnxruntime, tflm

if TYPE_CHECKING:
    import numpy as np

    from toolkit.benchmark.runners import Runner
    from toolkit.checks.report import CompatibilityReport
    from toolkit.targets import Target

Fail = Callable[[str, str, str], Exception]  # (key, problem, fix) -> the error to raise


class Runtime(Protocol):
    """The interface every module in RUNTIMES provides (checked by tests over the registry)."""

    NAME: str
    SUFFIX: str
    LABEL: str
    FILE_KIND: str
    PACKAGES: tuple[str, ...]
    DEVICE_PACKAGES: tuple[str, ...]
    REFERENCE: bool
    TARGET_KEYS: dict[str, tuple[Any, bool]]
    ACCELERATOR_KEYS: dict[str, tuple[Any, bool]]

    def sniff(self, head: bytes, path: Path) -> bool: ...

    def validate_profile(self, fail: Fail, top: dict[str, Any], accelerator: dict[str, Any]) -> None: ...

    def export(self, model: Any, path: Path, target: Target, precision: str, calibration_x: np.ndarray,
               opset: int, quantization_aware: bool) -> Path: ...

    def export_spec(self, target: Target, precision: str, opset: int) -> dict[str, Any]: ...

    def open_runner(self, path: Path, threads: int = 1, validate: bool = True) -> Runner: ...

    def check(self, path: Path, target: Target) -> CompatibilityReport: ...

    def estimated_timing(self, target: Target, compatibility: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def record_extras(self, path: Path, precision: str, x: np.ndarray,
                      compatibility: Mapping[str, Any]) -> dict[str, Any]: ...


# litert first: a .tflite file that no target names is read by LiteRT (tflm reads the same files)
RUNTIMES: dict[str, ModuleType] = {module.NAME: module for module in (litert, onnxruntime, tflm)}
HEAD_BYTES = 16  # enough of a file's start for every sniff()


def runtime_named(name: str) -> Any:
    """The runtime module a target profile names (`runtime = "litert"`)."""
    if name not in RUNTIMES:
        raise EdgesmithError(f"unknown runtime '{name}'", f"use one of: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


def runtime_for_file(path: Path, trust_extension: bool = False) -> Any:
    """The runtime that reads this file, recognised by its content; with `trust_extension`, a
    file whose content no runtime recognises goes to the runtime of its extension, whose own
    loader then says what is wrong with it (truncated, corrupt)."""
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"model file {path} does not exist", "check the path")
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    for runtime in RUNTIMES.values():
        if runtime.sniff(head, path):
            return runtime
    for runtime in RUNTIMES.values():
        if trust_extension and path.suffix.lower() == f".{runtime.SUFFIX}":
            return runtime
    if trust_extension:
        listed = _neither(_distinct(f".{runtime.SUFFIX}" for runtime in RUNTIMES.values()))
    else:
        listed = _neither(_distinct(runtime.FILE_KIND for runtime in RUNTIMES.values())) + " file"
    suffixes = " or ".join(_distinct(f".{runtime.SUFFIX}" for runtime in RUNTIMES.values()))
    raise EdgesmithError(f"{path} is {listed}", f"pass a {suffixes} model exported by edgesmith or a converter")


def reads_file(runtime: Any, path: Path) -> bool:
    """Whether `runtime` recognises `path` (several runtimes can read one format)."""
    with open(path, "rb") as handle:
        return bool(runtime.sniff(handle.read(HEAD_BYTES), Path(path)))


def _distinct(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def _neither(kinds: list[str]) -> str:
    return f"neither {kinds[0]} nor {kinds[1]}" if len(kinds) == 2 else f"none of: {', '.join(kinds)}"


def reference_runtime() -> Any:
    """The runtime whose fp32 file every other runtime's fp32 file is cross-checked against."""
    return next(runtime for runtime in RUNTIMES.values() if runtime.REFERENCE)


def runtime_packages(on_device: bool = False) -> tuple[str, ...]:
    """Distributions of every registered runtime: all that shape artifacts (for the manifest),
    or `on_device`, only those a device needs to run the files."""
    return tuple(package for runtime in RUNTIMES.values()
                 for package in (runtime.DEVICE_PACKAGES if on_device else runtime.PACKAGES))
