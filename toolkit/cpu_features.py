"""The CPU instruction-set features that decide how int8 models behave and how fast they run.

int8 results are not CPU-independent: on x86 CPUs without a VNNI-class dot-product instruction,
ONNX Runtime's u8×s8 kernels (VPMADDUBSW) add pairs of products into 16-bit intermediates that
saturate when weights use the full 8-bit range; VNNI (AVX512-VNNI, AVX-VNNI), AMX and ARM's
dot-product instructions accumulate in 32 bits and do not. Every latency and every int8 figure
is therefore stored next to these flags. Standard library only: this module also runs on devices.
"""
from __future__ import annotations

import platform
from pathlib import Path

X86_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
ARM_FEATURES = ("asimd", "asimddp", "i8mm", "sve")
_X86_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8")
_CPUINFO = Path("/proc/cpuinfo")


def cpu_features(cpuinfo: str | None = None, machine: str | None = None) -> dict:
    """Model, architecture and int8-relevant flags of this CPU (or of the given cpuinfo text).

    `int8_dot_product`: the CPU has an instruction that accumulates int8 products in 32 bits.
    `u8s8_saturation`: ONNX Runtime's u8×s8 kernels can saturate here (x86 without one).
    """
    text = cpuinfo if cpuinfo is not None else (_CPUINFO.read_text() if _CPUINFO.is_file() else "")
    arch = machine or platform.machine() or "unknown"
    fields = _first_block(text)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    x86 = arch in ("x86_64", "AMD64", "i686", "i386")
    known = X86_FEATURES if x86 else ARM_FEATURES
    present = [name for name in known if name in flags]
    dot_product = any(name in flags for name in (_X86_DOT_PRODUCT if x86 else ("asimddp",)))
    return {
        "model": _model_name(fields) or platform.processor() or "unknown",
        "arch": arch,
        "features": present,
        "missing": [name for name in known if name not in flags],
        "int8_dot_product": dot_product,
        "u8s8_saturation": x86 and bool(flags) and not dot_product,
    }


def describe(features: dict) -> str:
    """One line a person can read next to a latency: model, arch, the flags that matter."""
    dot = "int8 dot product" if features["int8_dot_product"] else "no int8 dot product (no VNNI/dotprod)"
    flags = " ".join(features["features"]) or "no SIMD flags read"
    return f"{features['model']} ({features['arch']}: {flags}; {dot})"


def _first_block(text: str) -> dict[str, str]:
    """Key/value pairs of the first processor block of /proc/cpuinfo (plus ARM's global keys)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key and key not in fields:
            fields[key] = value.strip()
    return fields


def _model_name(fields: dict[str, str]) -> str:
    """x86 says `model name`; ARM kernels often give only an implementer/part code."""
    if fields.get("model name"):
        return fields["model name"]
    if fields.get("Model"):
        return fields["Model"]
    if fields.get("CPU implementer"):
        return f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return ""
