"""QAT variants reach ONNX through their int8 TFLite file (README: "their ONNX model runs real
integer kernels"): the exported file carries the QAT model's ranges and ONNX Runtime runs it
with fused integer kernels, not float kernels on dequantized tensors."""
from __future__ import annotations

import numpy as np

from toolkit.benchmark.runners import open_runner, predict
from toolkit.converters.onnx import runtime_op_counts
from toolkit.passes import apply_chain, parse_chain
from toolkit.runtimes import runtime_named
from toolkit.targets import load_target


def test_a_qat_variant_exports_to_onnx_through_its_tflite_file_with_integer_kernels(
        teacher, make_context, small_digits, monkeypatch, tmp_path):
    from toolkit.converters import onnx

    result = apply_chain(teacher, parse_chain(["qat"]), make_context(epochs=1))
    routed = []
    monkeypatch.setattr(onnx, "export_tflite", lambda *args, real=onnx.export_tflite, **kw: routed.append(args) or real(*args, **kw))
    path = runtime_named("onnxruntime").export(result.model, tmp_path / "qat__int8.onnx", load_target("onnx-cpu"), "int8",
                                               small_digits.x_train[:64], 17, quantization_aware=True)
    assert len(routed) == 1 and routed[0][0].suffix == ".tflite"
    counts = runtime_op_counts(path)
    assert counts.get("QLinearConv", 0) >= 1, counts
    assert "Conv" not in counts, f"float convolutions left: {counts}"
    onnx_top1 = predict(open_runner(path, 1), small_digits.x_val).argmax(axis=1)
    keras_top1 = result.model.predict(small_digits.x_val, verbose=0).argmax(axis=1)
    assert np.mean(onnx_top1 == keras_top1) >= 0.95  # the QAT model's own ranges, not new ones
