"""Edge TPU: full-int8 models map entirely; the compiler stops at the first unsupported op."""
from __future__ import annotations

import os
import stat
import sys

import pytest

from toolkit.checks import check_artifact
from toolkit.converters.edgetpu import NOT_FOUND, compile_edgetpu, parse_compiler_output
from toolkit.targets import load_target


@pytest.fixture
def edgetpu():
    return load_target("edgetpu")


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))


def test_full_int8_static_model_maps_every_op(int8_model, edgetpu, no_compiler):
    report = check_artifact(int8_model, edgetpu)
    assert report.compatible
    assert report.share_ops == 1.0 and report.share_macs == 1.0
    assert report.partition_at is None and report.partitions == 1
    assert [op.op for op in report.ops][:2] == ["QUANTIZE", "CONV_2D"]
    # conv 3*3*1*4 int8 weights + 4 int32 biases, dense 36*10 int8 + 10 int32, reshape's int32[2] shape
    assert report.param_cache["used_bytes"] == 36 + 4 * 4 + 360 + 10 * 4 + 8
    assert report.param_cache["capacity_bytes"] == 8 * 1024 * 1024
    assert (report.compile["status"], report.compile["reason"]) == ("skipped", NOT_FOUND)
    assert "all" in report.summary and "Edge TPU" in report.summary


def test_unsupported_op_in_the_middle_is_the_partition_point(gelu_int8_model, edgetpu, no_compiler):
    report = check_artifact(gelu_int8_model, edgetpu)
    names = [op.op for op in report.ops]
    gelu = names.index("GELU")
    assert not report.compatible
    assert report.partition_at == gelu
    assert all(op.runs_on == "accelerator" for op in report.ops[:gelu])
    assert all(op.runs_on == "cpu" for op in report.ops[gelu:])
    assert "not supported" in report.ops[gelu].reason
    dense = report.ops[names.index("FULLY_CONNECTED")]
    assert dense.supported and "after the partition at op" in dense.reason
    assert 0 < report.share_macs < 1  # the conv is on the TPU, the dense layer is not
    assert f"partition at op {gelu} GELU" in report.summary
    assert report.unsupported_ops == ["GELU"]


def test_float_io_conversions_stay_on_the_cpu_without_cutting_the_graph(float_io_int8_model, edgetpu, no_compiler):
    report = check_artifact(float_io_int8_model, edgetpu)
    first, last = report.ops[0], report.ops[-1]
    assert (first.op, last.op) == ("QUANTIZE", "DEQUANTIZE")
    assert first.runs_on == last.runs_on == "cpu"
    assert "model boundary" in first.reason and "model boundary" in last.reason
    assert all(op.runs_on == "accelerator" for op in report.ops[1:-1])
    assert report.partition_at is None and report.share_macs == 1.0
    assert not report.compatible  # strict: every op on the Edge TPU only with integer I/O


@pytest.mark.parametrize("fixture", ["float_model", "dynamic_range_model"])
def test_float_model_is_rejected_with_the_reason(fixture, request, edgetpu, no_compiler):
    report = check_artifact(request.getfixturevalue(fixture), edgetpu)
    assert not report.compatible
    assert any("not integer-quantized" in blocker for blocker in report.blockers)
    assert all(op.runs_on == "cpu" for op in report.ops)
    assert report.summary.startswith("not compatible with edgetpu: model is not integer-quantized")


def test_dynamic_batch_is_flagged(dynamic_batch_int8_model, edgetpu, no_compiler):
    report = check_artifact(dynamic_batch_int8_model, edgetpu)
    assert not report.compatible
    assert any(blocker.startswith("dynamic shape") and "-1" in blocker for blocker in report.blockers)
    assert report.share_ops == 0.0
    # the same file is fine for a CPU, which has no static-shape rule
    assert not check_artifact(dynamic_batch_int8_model, load_target("cpu")).blockers


COMPILER_LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 12 ms.

Input model: {model}
Input size: 2.95KiB
Output model: {output}
Output size: 20.57KiB
On-chip memory used for caching model parameters: 1.25KiB
On-chip memory remaining for caching model parameters: 7.88MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 8
Operation log: {log}

Model successfully compiled but not all operations are supported by the Edge TPU.
Number of operations that will run on Edge TPU: 3
Number of operations that will run on CPU: 5

Operator                       Count      Status

QUANTIZE                       1          Mapped to Edge TPU
CONV_2D                        1          Mapped to Edge TPU
MAX_POOL_2D                    1          Mapped to Edge TPU
GELU                           1          Operation not supported
FULLY_CONNECTED                1          More than one subgraph is not supported
"""


def _fake_compiler(folder, body: str):
    script = folder / "edgetpu_compiler"
    script.write_text(f"#!{sys.executable}\nimport pathlib, sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_compiler_output_is_parsed():
    result = parse_compiler_output(COMPILER_LOG.format(model="m.tflite", output="m_edgetpu.tflite", log="m.log"))
    assert (result.status, result.version) == ("compiled", "16.0.384591198")
    assert (result.ops_total, result.ops_on_accelerator, result.ops_on_cpu) == (8, 3, 5)
    assert result.cache_used_bytes == 1280 and result.off_chip_bytes == 0
    assert [op.op for op in result.operators if not op.mapped] == ["GELU", "FULLY_CONNECTED"]


def test_installed_compiler_decides_the_verdict(gelu_int8_model, edgetpu, tmp_path, monkeypatch):
    body = (
        "args = sys.argv[1:]\n"
        "out, model = pathlib.Path(args[args.index('--out_dir') + 1]), pathlib.Path(args[-1])\n"
        "(out / (model.stem + '_edgetpu.tflite')).write_bytes(model.read_bytes())\n"
        f"print({COMPILER_LOG!r}.format(model=model, output='x', log='y'))\n"
    )
    _fake_compiler(tmp_path, body)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    report = check_artifact(gelu_int8_model, edgetpu)
    assert report.compile["status"] == "compiled" and report.compile["ops_on_cpu"] == 5
    assert not report.compatible
    assert "edgetpu_compiler: 3 of 8 ops mapped" in report.summary


def test_failing_compiler_reports_its_error(float_model, tmp_path, monkeypatch):
    _fake_compiler(tmp_path, "print('Edge TPU Compiler version 16.0.384591198')\n"
                             "print('ERROR: Model not quantized', file=sys.stderr)\nsys.exit(1)")
    monkeypatch.setenv("PATH", str(tmp_path))
    result = compile_edgetpu(float_model, tmp_path / "out")
    assert result.status == "failed"
    assert result.reason == "edgetpu_compiler exited with status 1: ERROR: Model not quantized"
