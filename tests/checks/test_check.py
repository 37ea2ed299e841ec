"""check_artifact on any file: report shape, ONNX models, and one-line errors for bad input."""
from __future__ import annotations

import json

import pytest

from toolkit.checks import check_artifact
from toolkit.errors import EdgesmithError
from toolkit.targets import load_target, targets_dir

TARGET_FILES = sorted(targets_dir().glob("*.toml"))


def onnx_model(path, domain: str = ""):
    """A 4 -> 3 dense layer (MatMul, Add, Relu), plus one node from `domain` when given."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    bias = numpy_helper.from_array(np.zeros(3, np.float32), "B")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["a"]),
             helper.make_node("Relu", ["a"], ["y" if not domain else "r"])]
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        nodes.append(helper.make_node("Frobnicate", ["r"], ["y"], domain=domain))
        opsets.append(helper.make_opsetid(domain, 1))
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weights, bias])
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=8), path)
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return onnx_model(tmp_path_factory.mktemp("onnx") / "dense.onnx")


@pytest.mark.parametrize("target_file", TARGET_FILES, ids=lambda p: p.stem)
def test_every_target_checks_a_model_of_its_runtime(target_file, request, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # the Edge TPU compiler step must be reproducible
    target = load_target(str(target_file))
    models = {"litert": ["int8_model", "float_model"], "onnxruntime": ["onnx_file"],
              "tflm": ["int8_model", "float_model"]}[target.runtime]
    for fixture in models:
        report = check_artifact(request.getfixturevalue(fixture), target)
        data = json.loads(json.dumps(report.to_dict()))
        assert data["target"] == target.name and data["compatible"] == report.compatible
        assert data["ops_total"] == len(data["ops"]) > 0
        assert data["ops_on_accelerator"] == sum(op["runs_on"] == "accelerator" for op in data["ops"])
        assert 0.0 <= data["share_ops"] <= 1.0
        assert all(op["reason"] for op in data["ops"] if op["runs_on"] != "accelerator")
        assert report.compatible == (data["ops_on_accelerator"] == data["ops_total"] and not data["blockers"])
        assert report.summary in report.format_text() and "\n" not in report.summary


def test_text_report_has_the_op_table(gelu_int8_model, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    text = check_artifact(gelu_int8_model, load_target("edgetpu")).format_text()
    assert "#  op" in text and "runs on" in text
    assert "GELU" in text and "op GELU is not supported by Edge TPU" in text
    assert "parameter cache:" in text and "edgetpu_compiler: skipped" in text


def test_onnx_model_loads_on_onnx_runtime(onnx_file):
    report = check_artifact(onnx_file, load_target("onnx-cpu"))
    assert report.compatible, report.format_text()
    assert [op.op for op in report.ops] == ["MatMul", "Add", "Relu"]
    assert {op.version for op in report.ops} == {17}


def test_onnx_op_from_unknown_domain_fails_to_load(tmp_path):
    report = check_artifact(onnx_model(tmp_path / "custom.onnx", "com.example"), load_target("onnx-cpu"))
    assert not report.compatible
    assert report.unsupported_ops == ["com.example.Frobnicate"]
    assert report.ops[-1].runs_on == "none"
    assert any(blocker.startswith("ONNX Runtime cannot load it") for blocker in report.blockers)


@pytest.mark.parametrize("content", [b"", b"not a model at all", bytes(range(256)) * 4])
def test_non_model_file_is_one_line_error(content, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(EdgesmithError, match="neither a TFLite flatbuffer nor an .onnx file") as error:
        check_artifact(path, load_target("cpu"))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_tflite_is_one_line_error(fraction, int8_model, tmp_path):
    data = int8_model.read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(EdgesmithError, match="truncated or corrupt TFLite model") as error:
        check_artifact(path, load_target("edgetpu"))
    assert "\n" not in str(error.value)


def test_truncated_onnx_is_one_line_error(onnx_file, tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(onnx_file.read_bytes()[:60])
    with pytest.raises(EdgesmithError, match="not a readable ONNX model") as error:
        check_artifact(path, load_target("onnx-cpu"))
    assert "\n" not in str(error.value)


def test_format_and_runtime_must_match(int8_model, onnx_file):
    with pytest.raises(EdgesmithError, match="is a TFLite model but target 'onnx-cpu' runs onnxruntime"):
        check_artifact(int8_model, load_target("onnx-cpu"))
    with pytest.raises(EdgesmithError, match="is an ONNX model but target 'cpu' runs litert"):
        check_artifact(onnx_file, load_target("cpu"))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(EdgesmithError, match="does not exist"):
        check_artifact(tmp_path / "nope.tflite", load_target("cpu"))
