"""Arm's Ethos-U compiler, Vela (package `ethos-u-vela`): compile when it is installed, else say why not.

Vela is the ground truth for an Ethos-U: it decides which ops run on the NPU (the rest stay on
the Cortex-M in TFLite Micro), lays out the SRAM arena and estimates the inference time from
its own performance model of the chip and the system's memories. Its numbers are parsed from
its summary CSV and its operator listing, never re-derived here.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.checks.report import CompileResult
from toolkit.targets import Target

COMPILER = "vela"
NOT_FOUND = f"{COMPILER} not found (install the optional extra: pip install 'edgesmith[mcu]')"
KIB = 1024
_MEMORIES = ("sram", "dram", "on_chip_flash", "off_chip_flash")


@dataclass(frozen=True)
class VelaResult(CompileResult):
    """Vela's verdict on one model for one Ethos-U configuration (memory in bytes; the op counts
    are Vela's own, after its graph rewrites; output: the compiled <stem>_vela.tflite)."""

    compiler: str = COMPILER
    accelerator_config: str = ""
    system_config: str = ""
    memory_mode: str = ""
    summary_csv: str | None = None
    cpu_ops: tuple[str, ...] = ()
    memory_used: dict[str, int] = field(default_factory=dict)  # sram, dram, on/off_chip_flash
    inference_time_ms: float | None = None
    cycles_total: int | None = None
    cycles_npu: int | None = None
    nn_macs: int | None = None
    clock_hz: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_ops"] = list(self.cpu_ops)
        return data


def vela_settings(target: Target) -> dict[str, str]:
    """The Vela options a profile fixes (its [vela] table), in Vela's own words."""
    return {key: str(value) for key, value in target.options["vela"].items()}


def compile_vela(model: Path, out_dir: Path, target: Target, timeout_s: int = 600) -> VelaResult:
    """Run Vela on `model` for `target`, writing `<stem>_vela.tflite` and its summary CSV to
    `out_dir` (each renamed into place only when Vela succeeded)."""
    from toolkit.checks import compiler_path

    settings = vela_settings(target)
    executable = compiler_path(COMPILER)
    if executable is None:
        return VelaResult("skipped", NOT_FOUND, **_configuration(settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vela-", dir=out_dir) as scratch:
        command = [executable, str(model), "--output-dir", scratch, "--show-cpu-operations",
                   "--accelerator-config", settings["accelerator_config"], "--config", _config_file(settings),
                   "--system-config", settings["system_config"], "--memory-mode", settings["memory_mode"]]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return VelaResult("failed", f"{COMPILER} did not finish within {timeout_s} s", **_configuration(settings))
        text = done.stdout + "\n" + done.stderr
        compiled = Path(scratch) / f"{Path(model).stem}_vela.tflite"
        summaries = sorted(Path(scratch).glob(f"{Path(model).stem}_summary_*.csv"))
        if done.returncode != 0 or not compiled.exists() or not summaries:
            return VelaResult("failed", _error_line(text, done.returncode), **_configuration(settings))
        moved = [out_dir / compiled.name, out_dir / summaries[0].name]
        for source, final in zip((compiled, summaries[0]), moved):
            os.replace(source, final)
    return parse_vela(text, moved[1], moved[0], _version(executable), settings)


def parse_vela(text: str, summary_csv: Path, output: Path | None, version: str, settings: dict[str, str]) -> VelaResult:
    """Vela's summary CSV (memory, time, cycles, MACs) and its printed operator split."""
    with open(summary_csv, newline="") as handle:
        row = next(csv.DictReader(handle))
    npu = _number(text, r"NPU operators = (\d+)")
    cpu = _number(text, r"CPU operators = (\d+)")
    return VelaResult(
        "compiled", version=version, **_configuration(settings),
        output=str(output) if output else None, summary_csv=str(summary_csv),
        ops_total=None if npu is None or cpu is None else npu + cpu, ops_on_accelerator=npu, ops_on_cpu=cpu,
        cpu_ops=tuple(dict.fromkeys(re.findall(r"^\s*CPU: (\S+) = ", text, re.MULTILINE))),
        memory_used={memory: round(float(row[f"{memory}_memory_used"]) * KIB) for memory in _MEMORIES},
        inference_time_ms=float(row["inference_time"]) * 1000, cycles_total=int(float(row["cycles_total"])),
        cycles_npu=int(float(row["cycles_npu"])), nn_macs=int(float(row["nn_macs"])), clock_hz=float(row["core_clock"]),
    )


def _configuration(settings: dict[str, str]) -> dict[str, str]:
    return {key: settings[key] for key in ("accelerator_config", "system_config", "memory_mode")}


def _config_file(settings: dict[str, str]) -> str:
    """A profile names Vela's bundled .ini by its name in Vela (`Arm/vela.ini`), or a path."""
    named = settings["config"]
    if Path(named).is_file():
        return named
    try:
        import ethosu.vela
    except ImportError:  # a Vela outside this environment: let it resolve the name itself
        return named
    bundled = Path(ethosu.vela.__file__).parent.parent / "config_files" / named
    return str(bundled) if bundled.is_file() else named


def _version(executable: str) -> str:
    done = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _number(text: str, pattern: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def _error_line(text: str, returncode: int) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Warning")]
    errors = [line for line in lines if "error" in line.lower()]
    return f"{COMPILER} exited with status {returncode}: {(errors or lines or ['no output'])[-1]}"


def remove_outputs(model: Path, out_dir: Path) -> None:
    """Drop an earlier compile of `model` from `out_dir` (a failed recompile must not leave it)."""
    for stale in [out_dir / f"{model.stem}_vela.tflite", *out_dir.glob(f"{model.stem}_summary_*.csv")]:
        stale.unlink(missing_ok=True)
