"""GPU delegate: unsupported ops are named; only the largest supported run is delegated."""
from __future__ import annotations

from toolkit.checks import check_artifact
from toolkit.targets import load_target


def test_op_without_gpu_kernel_is_named(log_softmax_model):
    report = check_artifact(log_softmax_model, load_target("gpu"))
    assert not report.compatible
    assert report.unsupported_ops == ["LOG_SOFTMAX"]
    assert "LOG_SOFTMAX" in report.summary
    row = next(op for op in report.ops if op.op == "LOG_SOFTMAX")
    assert row.runs_on == "cpu" and row.reason == "op LOG_SOFTMAX is not supported by GPU delegate"
    assert all(op.runs_on == "accelerator" for op in report.ops if op.op != "LOG_SOFTMAX")


def test_only_the_largest_supported_run_is_delegated(split_by_log_softmax_model):
    report = check_artifact(split_by_log_softmax_model, load_target("gpu"))
    names = [op.op for op in report.ops]
    cut = names.index("LOG_SOFTMAX")
    before, after = report.ops[:cut], report.ops[cut + 1:]
    assert len(after) > len(before) > 0
    assert all(op.runs_on == "accelerator" for op in after)
    assert all(op.supported and op.runs_on == "cpu" and "outside the largest" in op.reason for op in before)
    assert report.partitions == 1


def test_fp16_weights_are_decompressed_on_the_gpu(fp16_model, float_model):
    report = check_artifact(fp16_model, load_target("gpu"))
    assert "DEQUANTIZE" in [op.op for op in report.ops]
    assert report.compatible, report.format_text()
    assert check_artifact(float_model, load_target("gpu")).compatible


def test_int8_io_quantize_is_accepted(int8_model):
    assert check_artifact(int8_model, load_target("gpu")).compatible
