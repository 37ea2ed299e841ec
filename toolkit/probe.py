"""What a machine is, as far as edge inference cares: CPU and its int8 features, OS, Python,
and which runtimes and ONNX Runtime execution providers load. Standard library plus the
runtimes themselves (each optional), so the same facts can be gathered on a device.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform

from toolkit.cpu_features import cpu_features, describe
from toolkit.runtimes import runtime_packages



def probe() -> dict:
    """Facts about this machine; a runtime that is missing is reported as None, not an error."""
    return {
        "hostname": platform.node(),
        "cpu": cpu_features(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "runtimes": {name: _version(name) for name in ("numpy", *runtime_packages(on_device=True))},
        "onnxruntime_providers": _onnxruntime_providers(),
    }


def format_probe(facts: dict) -> str:
    runtimes = ", ".join(f"{name} {version or 'not installed'}" for name, version in facts["runtimes"].items())
    providers = ", ".join(facts["onnxruntime_providers"]) or "none (onnxruntime not installed)"
    cpu = facts["cpu"]
    int8 = ("ONNX Runtime u8×s8 int8 kernels can saturate here (no VNNI): use reduce_range (7-bit weights)"
            if cpu["u8s8_saturation"] else "int8 kernels accumulate in 32 bits here")
    return "\n".join([
        f"host       {facts['hostname']}",
        f"cpu        {describe(cpu)}",
        f"missing    {' '.join(cpu['missing']) or '-'}",
        f"int8       {int8}",
        f"cores      {facts['cores']} ({facts['usable_cores']} usable by this process)",
        f"os         {facts['os']}",
        f"python     {facts['python']}",
        f"runtimes   {runtimes}",
        f"ORT EPs    {providers}",
    ])


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())
