"""Wrapper for Coral's `edgetpu_compiler`: compile when it is on PATH, else say why not.

The compiler is the ground truth for the Edge TPU (it alone decides what maps), but it ships
only as a Debian package from Coral's own apt repository, so most machines lack it. Where it is
missing the result is "skipped" with that reason, and the static check stands on its own.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.checks.report import CompileResult

COMPILER = "edgetpu_compiler"
NOT_FOUND = (f"{COMPILER} not found on PATH (Coral's compiler is not installable from this machine's "
             "package registries)")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


@dataclass(frozen=True)
class CompiledOp:
    """One row of the compiler's operator table: `count` ops of kind `op` got `status`."""

    op: str
    count: int
    status: str  # "Mapped to Edge TPU", "Operation not supported", ...

    @property
    def mapped(self) -> bool:
        return self.status.startswith("Mapped to Edge TPU")


@dataclass(frozen=True)
class EdgeTpuCompileResult(CompileResult):
    compiler: str = COMPILER  # output: the *_edgetpu.tflite file
    cache_used_bytes: int | None = None
    off_chip_bytes: int | None = None  # weights streamed from host memory on every inference
    operators: tuple[CompiledOp, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["operators"] = [asdict(op) for op in self.operators]
        return data


def compile_edgetpu(model: Path, out_dir: Path, timeout_s: int = 180) -> EdgeTpuCompileResult:
    """Run `edgetpu_compiler` on `model`, writing `<stem>_edgetpu.tflite` and its log to `out_dir`."""
    executable = shutil.which(COMPILER)
    if executable is None:
        return EdgeTpuCompileResult("skipped", NOT_FOUND)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [executable, "--show_operations", "--out_dir", str(out_dir), str(model)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return EdgeTpuCompileResult("failed", f"{COMPILER} did not finish within {timeout_s} s")
    except OSError as error:
        return EdgeTpuCompileResult("failed", f"{COMPILER} could not start: {error}")
    text = done.stdout + "\n" + done.stderr
    output = out_dir / f"{Path(model).stem}_edgetpu.tflite"
    if done.returncode != 0 or not output.exists():
        return EdgeTpuCompileResult("failed", _error_line(text, done.returncode), version=_version(text))
    return parse_compiler_output(text, output)


def parse_compiler_output(text: str, output: Path | None = None) -> EdgeTpuCompileResult:
    """Read the summary and operator table that `edgetpu_compiler --show_operations` prints."""
    on_tpu = _number(text, r"Number of operations that will run on Edge TPU:\s*(\d+)")
    on_cpu = _number(text, r"Number of operations that will run on CPU:\s*(\d+)")
    total = _number(text, r"Total number of operations:\s*(\d+)")
    operators = tuple(
        CompiledOp(name, int(count), status.strip())
        for name, count, status in re.findall(r"^([A-Za-z][\w-]*)\s+(\d+)\s+(\S.*)$", text, re.MULTILINE)
    )
    if on_tpu is None and operators:
        on_tpu = sum(op.count for op in operators if op.mapped)
    if total is None and operators:
        total = sum(op.count for op in operators)
    if on_cpu is None and total is not None and on_tpu is not None:
        on_cpu = total - on_tpu
    return EdgeTpuCompileResult(
        "compiled", version=_version(text), output=str(output) if output else None,
        ops_total=total, ops_on_accelerator=on_tpu, ops_on_cpu=on_cpu,
        cache_used_bytes=_size(text, r"On-chip memory used for caching model parameters:\s*([\d.]+)\s*(\w+)"),
        off_chip_bytes=_size(text, r"Off-chip memory used for streaming uncached model parameters:\s*([\d.]+)\s*(\w+)"),
        operators=operators,
    )


def _number(text: str, pattern: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def _size(text: str, pattern: str) -> int | None:
    match = re.search(pattern, text)
    if not match or match.group(2) not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _version(text: str) -> str:
    match = re.search(r"Edge TPU Compiler version\s+(\S+)", text)
    return match.group(1) if match else ""


def _error_line(text: str, returncode: int) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "not quantized" in line.lower()]
    detail = (errors or lines or ["no output"])[-1]
    return f"{COMPILER} exited with status {returncode}: {detail}"
