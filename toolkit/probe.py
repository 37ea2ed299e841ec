"""What a machine is, as far as edge inference cares: CPU and its int8 features, OS, Python,
which runtimes and ONNX Runtime execution providers load, and which LiteRT delegates
(GPU, Edge TPU) load. Standard library plus the runtimes themselves (each optional), so the
same facts are gathered on a device: `toolkit.devices.ssh` runs this file there as a script.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import sys

if __package__:  # imported as part of edgesmith
    from toolkit.cpu_features import cpu_features, describe
else:  # run as a script on a device, from the folder holding copies of the device modules
    from cpu_features import cpu_features, describe


def probe(packages: tuple[str, ...]) -> dict:
    """Facts about this machine, with the versions of `packages` (the runtimes a device needs,
    from the host's runtime registry); a package that is missing is None, not an error."""
    return {
        "hostname": platform.node(),
        "cpu": cpu_features(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "runtimes": {name: _version(name) for name in packages},
        "onnxruntime_providers": _onnxruntime_providers(),
        "accelerators": _accelerators(),
    }


def format_probe(facts: dict) -> str:
    runtimes = ", ".join(f"{name} {version or 'not installed'}" for name, version in facts["runtimes"].items())
    providers = ", ".join(facts["onnxruntime_providers"]) or "none (onnxruntime not installed)"
    cpu = facts["cpu"]
    int8 = ("ONNX Runtime u8×s8 int8 kernels can saturate here (no VNNI): use reduce_range (7-bit weights)"
            if cpu["u8s8_saturation"] else "int8 kernels accumulate in 32 bits here")
    accelerators = [f"{item['name']}: loads ({item['library']})" if item["loads"] else item["problem"]
                    for item in facts["accelerators"].values()] or ["unknown: trying them needs numpy"]
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
        f"delegates  {accelerators[0]}",
        *[f"           {line}" for line in accelerators[1:]],
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


def _accelerators() -> dict[str, dict]:
    """{kind: name, library, loads, problem} for each LiteRT delegate a target profile can ask for,
    by really loading it; {} where numpy is missing."""
    try:
        bench = importlib.import_module("toolkit.benchmark.device_runners" if __package__ else "device_runners")
    except ImportError:
        return {}
    found = {}
    for kind, (name, library) in bench.DELEGATES.items():
        try:
            bench.load_delegate(kind)
            found[kind] = {"name": name, "library": library, "loads": True, "problem": None}
        except bench.BenchError as error:
            found[kind] = {"name": name, "library": library, "loads": False, "problem": error.problem}
    return found


if __name__ == "__main__":  # on a device: python3 probe.py PACKAGE...
    print(json.dumps(probe(tuple(sys.argv[1:]))))
