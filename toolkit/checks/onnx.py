"""Check of an .onnx file for ONNX Runtime: valid model, loads in a CPU session, op inventory.

The CPU execution provider has a kernel for every standard ONNX op, so the real questions are
whether the file is valid and whether a session builds (an op from an unknown domain, or an
opset newer than the installed runtime, fails there).
"""
from __future__ import annotations

from pathlib import Path

from toolkit.checks.report import ACCELERATOR, NOWHERE, CompatibilityReport, OpPlacement
from toolkit.errors import EdgesmithError, first_line
from toolkit.targets import Target

DEFAULT_DOMAIN = "ai.onnx"


def check_onnx(path: Path, target: Target) -> CompatibilityReport:
    """Validate `path` with onnx.checker and an ONNX Runtime CPU session; list its ops."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf raises several unrelated types for a damaged file
        raise EdgesmithError(f"{path} is not a readable ONNX model ({type(error).__name__}: {first_line(error)})",
                             "re-export the model; the file is truncated or not ONNX") from None
    if not model.graph.node:
        raise EdgesmithError(f"{path} has no ONNX graph nodes", "pass an exported ONNX model")
    blockers = []
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, UnicodeDecodeError) as error:  # a damaged name is not valid UTF-8
        blockers.append(f"onnx.checker rejects the model: {first_line(error)}")
    session_error = _session_error(path)
    if session_error:
        blockers.append(f"ONNX Runtime cannot load it on the CPU: {session_error}")
    opsets = {(entry.domain or DEFAULT_DOMAIN): entry.version for entry in model.opset_import}
    domains = set(target.accelerator.op_domains)
    ops = []
    for index, node in enumerate(model.graph.node):
        domain = node.domain or DEFAULT_DOMAIN
        known = domain in domains
        name = node.op_type if domain == DEFAULT_DOMAIN else f"{domain}.{node.op_type}"
        ops.append(OpPlacement(
            index=index, op=name, version=opsets.get(domain), runs_on=ACCELERATOR if known else NOWHERE,
            supported=known,
            reason=None if known else f"domain '{domain}' has no kernels in {target.accelerator.name}",
        ))
    return CompatibilityReport(
        artifact=str(path), target=target.name, accelerator=target.accelerator.name,
        fallback=target.accelerator.fallback, format="onnx", ops=tuple(ops), blockers=tuple(blockers),
        partitions=1 if not blockers else 0,
        notes=(f"opsets: {', '.join(f'{d} {v}' for d, v in sorted(opsets.items()))}",),
    )


def _session_error(path: Path) -> str | None:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidGraph/NotImplemented classes
        return first_line(error)
    return None

