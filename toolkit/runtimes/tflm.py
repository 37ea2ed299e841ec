"""TensorFlow Lite Micro: int8 .tflite files for microcontrollers (Cortex-M), optionally with an
Arm Ethos-U micro-NPU whose part of the graph Vela compiles.

One runtime serves both kinds of target because the device runs one thing in both cases: the
TFLM interpreter on a Cortex-M, which on an Ethos-U board hands Vela's compiled command stream
to the NPU through a custom op. Vela is that target's compiler, named by its profile
(`compiler = "vela"`), just as LiteRT's Edge TPU target names `edgetpu_compiler`.

Nothing here runs on the device: accuracy comes from TFLM's reference kernels on this machine,
memory from a static plan next to TFLM's own recording allocator, latency is an estimate.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import numpy as np

    from toolkit.benchmark.runners import Runner
    from toolkit.checks.report import CompatibilityReport
    from toolkit.targets import Target

NAME = "tflm"
SUFFIX = "tflite"
FILE_KIND = "a TFLite flatbuffer"  # how error messages name the file
LABEL = "a TFLite"
PACKAGES = ("tflite-micro", "ethos-u-vela")  # versions that shape its checks, runs and estimates
DEVICE_PACKAGES: tuple[str, ...] = ()  # a microcontroller runs firmware, not a Python package
REFERENCE = False
CROSSCHECK_SAMPLES = 1000
# Board and estimate figures; [vela] only for Ethos-U targets (validate_profile says which).
TARGET_KEYS: dict[str, tuple[Any, bool]] = {
    "board": (str, True), "clock_hz": (int, True), "flash_bytes": (int, True), "ram_bytes": (int, True),
    "reserved_flash_bytes": (int, False), "reserved_ram_bytes": (int, False),
    "cycles_per_mac": ((int, float), False), "reference_cycles_per_mac": ((int, float), False),
    "vela": (dict, False),
}
ACCELERATOR_KEYS: dict[str, tuple[Any, bool]] = {"tensor_types": (list, True)}
VELA_KEYS = ("accelerator_config", "system_config", "memory_mode", "config", "arena_memory")


def sniff(head: bytes, path: Path) -> bool:
    from toolkit.checks.flatbuffer import is_tflite

    return is_tflite(head)


def validate_profile(fail, top: dict[str, Any], accelerator: dict[str, Any]) -> None:
    """LiteRT's op-table rules, positive budgets, and either Vela's settings (Ethos-U) or the
    Cortex-M figures the latency estimate needs."""
    from toolkit.runtimes import litert

    litert.validate_profile(fail, top, accelerator)
    for key in ("clock_hz", "flash_bytes", "ram_bytes", "cycles_per_mac", "reference_cycles_per_mac"):
        if key in top and top[key] <= 0:
            raise fail(key, f"is {top[key]}", "use a positive number")
    for memory in ("ram_bytes", "flash_bytes"):
        reserved = top.get(f"reserved_{memory}", 0)
        if reserved < 0 or (memory in top and reserved >= top[memory]):
            raise fail(f"reserved_{memory}", f"is {reserved:,}, which leaves the model none of the board's {top.get(memory, 0):,}",
                       f"reserve from 0 up to less than {memory}")
    from toolkit.converters.vela import COMPILER

    if accelerator.get("compiler") == COMPILER:
        missing = [key for key in VELA_KEYS if key not in top.get("vela", {})]
        if missing:
            raise fail("vela", f"lacks {', '.join(missing)}", f"give [vela] the keys {', '.join(VELA_KEYS)}")
    elif "cycles_per_mac" not in top or "reference_cycles_per_mac" not in top:
        raise fail("cycles_per_mac", "and reference_cycles_per_mac are needed for the latency estimate",
                   "add the published CMSIS-NN cycles per MAC of the core (and of TFLM's reference kernels)")


def export(model: Any, path: Path, target: Target, precision: str, calibration_x: np.ndarray,
           opset: int, quantization_aware: bool) -> Path:
    """The int8 file (batch 1), its C source for the firmware, and for an Ethos-U target Vela's
    compiled file with its summary next to it (the C source is then the compiled file's)."""
    from toolkit.converters import tflite
    from toolkit.converters.c_source import write_c_source
    from toolkit.converters.vela import COMPILER, compile_vela, remove_outputs

    tflite.convert_to_file(model, path, precision, calibration_x=calibration_x,
                           int8_io_dtype=target.int8_io_dtype, fixed_batch=target.fixed_batch)
    firmware_model = path
    if target.accelerator.compiler == COMPILER:
        remove_outputs(path, path.parent)
        result = compile_vela(path, path.parent, target)
        firmware_model = Path(result.output) if result.output else path
    write_c_source(firmware_model)
    return path


def export_spec(target: Target, precision: str, opset: int) -> dict[str, Any]:
    from toolkit.converters.vela import COMPILER, vela_settings

    return {"fixed_batch": target.fixed_batch, "int8_io_dtype": target.int8_io_dtype,
            "vela": vela_settings(target) if target.accelerator.compiler == COMPILER else None}


def open_runner(path: Path, threads: int = 1, validate: bool = True) -> Runner:
    """The TFLM interpreter; a file it cannot load (an op without a kernel) is scored by LiteRT,
    and its record says so (the check names the missing kernel)."""
    from toolkit.benchmark.runners import LiteRTRunner
    from toolkit.benchmark.tflm import TFLMRunner, available
    from toolkit.errors import EdgesmithError

    if available():
        try:
            return TFLMRunner(path)
        except EdgesmithError:
            pass
    return LiteRTRunner(path, threads)


def check(path: Path, target: Target) -> CompatibilityReport:
    from toolkit.checks.mcu import check_mcu

    return check_mcu(path, target)


def estimated_timing(target: Target, compatibility: Mapping[str, Any]) -> dict[str, Any]:
    """Never measured here (no board): Vela's estimate, or MACs × cycles per MAC ÷ clock."""
    from toolkit.benchmark.estimate import estimated_timing

    return estimated_timing(target, compatibility)


def record_extras(path: Path, precision: str, x: np.ndarray, compatibility: Mapping[str, Any]) -> dict[str, Any]:
    """Memory (static plan, TFLM's recorded arena, flash, fit), Vela's NPU split, and how the
    TFLM run agrees with LiteRT on the same file."""
    from toolkit.benchmark.tflm import interpreter_facts

    memory = compatibility.get("memory") or {}
    extras: dict[str, Any] = {
        "peak_activation_bytes": memory.get("peak_activation_bytes"), "arena_estimate_bytes": memory.get("ram_needed_bytes"),
        "flash_bytes": memory.get("flash_needed_bytes"), "fits": memory.get("fits"),
        "npu": _npu(path, compatibility.get("compile")),
    }
    return {**extras, **interpreter_facts(path, x[:CROSSCHECK_SAMPLES])}


def _npu(path: Path, compiled: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Vela's verdict as the record keeps it, with the compiled file written next to the artifact."""
    if not compiled:
        return None
    keys = ("status", "reason", "version", "accelerator_config", "system_config", "memory_mode", "ops_on_accelerator",
            "ops_on_cpu", "cpu_ops", "memory_used", "inference_time_ms", "cycles_total", "nn_macs")
    compiled_file = path.parent / f"{path.stem}_vela.tflite"
    return {**{key: compiled.get(key) for key in keys},
            "compiled_file": compiled_file.name if compiled_file.exists() else None}
