"""Latency for devices this machine cannot run: an estimate, labelled as one everywhere.

No microcontroller is attached here, so MCU latency is never measured. For an Ethos-U it is
Vela's own estimate (its performance model of the NPU and the system's memories); for a plain
Cortex-M it is the model's multiply-accumulates times the cycles per MAC that Arm published for
CMSIS-NN on that core (the profile's `cycles_per_mac`, with its source), plus the slower TFLM
reference kernels' figure for ops CMSIS-NN does not cover, divided by the core clock.
"""
from __future__ import annotations

from typing import Any, Mapping

from toolkit.checks.report import ACCELERATOR
from toolkit.targets import Target

ESTIMATED = "estimated"


def estimated_timing(target: Target, compatibility: Mapping[str, Any]) -> dict[str, Any]:
    """The latency fields of a record, holding an estimate (p50 only: it has no spread)."""
    p50, method = _vela(compatibility) if target.accelerator.compiler else _cortex_m(target, compatibility)
    return {
        "latency_ms": {"p50": p50, "p90": None, "p99": None, "mean": None, "std": None, "ci95_p50": None,
                       "repeat95_p50": None, "runs": 0, "warmup_runs": 0},
        "latency_method": {"kind": ESTIMATED, **method},
        "latency_kind": ESTIMATED, "latency_measured_on": target.measured_on, "latency_on_device": False,
        "threads": 1, "batch": 1, "runs": None, "throughput": None, "latency_ms_all_cores": None,
        "peak_memory_mb": None, "latency_cpu": None,
    }


def _cortex_m(target: Target, compatibility: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
    options = target.options
    ops = compatibility.get("ops") or []
    optimized = sum(op.get("macs") or 0 for op in ops if op.get("runs_on") == ACCELERATOR)
    reference = sum(op.get("macs") or 0 for op in ops if op.get("runs_on") != ACCELERATOR)
    cycles = optimized * options["cycles_per_mac"] + reference * options["reference_cycles_per_mac"]
    return cycles / options["clock_hz"] * 1000, {
        "from": f"MACs × cycles per MAC ({target.accelerator.name}: {options['cycles_per_mac']:g}, "
                f"reference kernels: {options['reference_cycles_per_mac']:g}) ÷ {options['clock_hz'] / 1e6:g} MHz; "
                "ops without MACs (pooling, softmax, reshapes) are not counted",
        "macs_optimized": optimized, "macs_reference": reference, "cycles": round(cycles),
        "clock_hz": options["clock_hz"], "source": target.source.name,
    }


def _vela(compatibility: Mapping[str, Any]) -> tuple[float | None, dict[str, Any]]:
    compiled = compatibility.get("compile") or {}
    if compiled.get("status") != "compiled":
        return None, {"from": f"no estimate: Vela {compiled.get('status', 'did not run')} "
                              f"({compiled.get('reason') or 'see the check'})"}
    left = compiled.get("ops_on_cpu") or 0
    return compiled["inference_time_ms"], {
        "from": f"Vela {compiled['version']} performance model ({compiled['accelerator_config']}, "
                f"{compiled['system_config']}, {compiled['memory_mode']})"
                + (f"; the {left} ops left on the Cortex-M are not included" if left else ""),
        "cycles": compiled["cycles_total"], "clock_hz": compiled["clock_hz"],
    }
