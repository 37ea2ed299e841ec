"""CPU: the static XNNPACK verdict must match what the installed LiteRT actually delegates."""
from __future__ import annotations

import pytest

from toolkit.checks import check_artifact
from toolkit.targets import load_target


def xnnpack_delegated(path) -> tuple[set[int], int]:
    """Op indices the real XNNPACK delegate took, and how many partitions it made.

    Each DELEGATE node replaces a partition: walk back from its outputs through the original
    ops until reaching its inputs.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    details = interpreter._get_ops_details()
    producer = {int(t): d["index"] for d in details if d["op_name"] != "DELEGATE" for t in d["outputs"]}
    delegated, partitions = set(), 0
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        partitions += 1
        stop = {int(t) for t in node["inputs"]}
        pending = [int(t) for t in node["outputs"]]
        while pending:
            tensor = pending.pop()
            if tensor in stop or tensor not in producer or producer[tensor] in delegated:
                continue
            delegated.add(producer[tensor])
            pending += [int(t) for t in details[producer[tensor]]["inputs"] if t >= 0]
    return delegated, partitions


@pytest.mark.parametrize("fixture", ["float_model", "fp16_model", "dynamic_range_model", "int8_model",
                                     "gelu_int8_model", "log_softmax_model", "split_by_log_softmax_model"])
def test_static_placement_matches_the_runtime(fixture, request):
    path = request.getfixturevalue(fixture)
    report = check_artifact(path, load_target("cpu"))
    delegated, partitions = xnnpack_delegated(path)
    assert {op.index for op in report.ops if op.runs_on == "accelerator"} == delegated, report.format_text()
    assert report.partitions == partitions


def test_fallback_ops_are_named(gelu_int8_model):
    report = check_artifact(gelu_int8_model, load_target("cpu"))
    assert not report.compatible
    assert "GELU" in report.unsupported_ops
    assert "LiteRT built-in CPU kernels" in report.summary
    gelu = next(op for op in report.ops if op.op == "GELU")
    assert gelu.reason == "int8 tensors: XNNPACK runs GELU only on float32"


def test_float_model_runs_entirely_in_xnnpack(float_model):
    report = check_artifact(float_model, load_target("cpu"))
    assert report.compatible and report.summary == f"all {len(report.ops)} ops run on XNNPACK (cpu)"
