"""ONNX export and quantization against real converters and runtimes on a tiny digits CNN."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit._tf import keras, tf, tfmot
from toolkit.converters.onnx import (
    export_keras,
    export_tflite,
    load_checked,
    quantize_dynamic,
    quantize_static,
    runtime_op_counts,
)
from toolkit.checks.int8_kernels import kernel_agreement
from toolkit.cpu_features import cpu_features
from toolkit.errors import EdgesmithError

INPUT_SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    from toolkit.data import digits as embedded_digits

    images, target = embedded_digits()
    x = images / np.float32(16.0)
    return {"x_train": x[:1400], "y_train": target[:1400], "x_test": x[1400:], "y_test": target[1400:]}


@pytest.fixture(scope="module")
def cnn(digits):
    tf_keras = keras()
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            layers.Input(INPUT_SHAPE),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10),
        ]
    )
    _compile(model, learning_rate=0.01)
    model.fit(digits["x_train"], digits["y_train"], epochs=6, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def fp32_onnx(cnn, tmp_path_factory) -> Path:
    return export_keras(cnn, tmp_path_factory.mktemp("onnx") / "model.onnx", INPUT_SHAPE)


@pytest.fixture(scope="module")
def static_int8(fp32_onnx, digits) -> Path:
    return quantize_static(fp32_onnx, fp32_onnx.with_name("int8.onnx"), digits["x_train"][:200])


def test_fp32_onnx_matches_fp32_tflite(cnn, fp32_onnx, digits):
    tflite = tf().lite.TFLiteConverter.from_keras_model(cnn).convert()
    expected = _run_tflite(tflite, digits["x_test"])
    got = _run_onnx(fp32_onnx, digits["x_test"])
    assert np.abs(got - expected).max() <= 1e-4


def test_export_names_io_and_can_fix_the_batch(cnn, fp32_onnx, digits, tmp_path):
    fixed_path = export_keras(cnn, tmp_path / "fixed.onnx", INPUT_SHAPE, fixed_batch=True)
    dims = [d.dim_value for d in load_checked(fixed_path).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, *INPUT_SHAPE]
    flexible = load_checked(fp32_onnx)
    assert [v.name for v in flexible.graph.input] == ["input"]
    assert [v.name for v in flexible.graph.output] == ["output"]
    assert flexible.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 0  # symbolic batch
    # a batch-1 model calibrates too: samples are fed one at a time
    quantize_static(fixed_path, tmp_path / "fixed_int8.onnx", digits["x_train"][:20])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.onnx", "fixed_int8.onnx"]


def test_static_int8_is_qdq_runs_integer_kernels_and_agrees(cnn, static_int8, digits):
    stored_ops = {node.op_type for node in load_checked(static_int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= stored_ops
    executed = runtime_op_counts(static_int8)
    assert executed.get("QLinearConv") == 2 and "Conv" not in executed
    keras_top1 = cnn.predict(digits["x_test"], verbose=0).argmax(1)
    int8_top1 = _run_onnx(static_int8, digits["x_test"]).argmax(1)
    assert (int8_top1 == keras_top1).mean() >= 0.9
    assert sorted(p.name for p in static_int8.parent.iterdir()) == ["int8.onnx", "model.onnx"]


@pytest.mark.parametrize(
    ("samples", "problem"),
    [
        (np.zeros((0, *INPUT_SHAPE), np.float32), "calibration samples shaped"),
        (np.zeros((4, 28, 28, 1), np.float32), r"shaped \(28, 28, 1\) but the model input is \(8, 8, 1\)"),
    ],
    ids=["empty", "wrong-shape"],
)
def test_bad_calibration_samples_are_a_clear_error(fp32_onnx, tmp_path, samples, problem):
    with pytest.raises(EdgesmithError, match=problem):
        quantize_static(fp32_onnx, tmp_path / "int8.onnx", samples)
    assert list(tmp_path.iterdir()) == []


def test_dynamic_int8_runs_and_agrees(cnn, fp32_onnx, digits, tmp_path):
    dynamic = quantize_dynamic(fp32_onnx, tmp_path / "dynamic.onnx")
    assert "DynamicQuantizeLinear" in runtime_op_counts(dynamic)
    keras_top1 = cnn.predict(digits["x_test"], verbose=0).argmax(1)
    assert (_run_onnx(dynamic, digits["x_test"]).argmax(1) == keras_top1).mean() >= 0.9


@pytest.fixture(scope="module")
def qat_model(cnn, digits):
    quant_aware = tfmot().quantization.keras.quantize_model(cnn)
    _compile(quant_aware, learning_rate=0.001)
    quant_aware.fit(digits["x_train"], digits["y_train"], epochs=1, batch_size=32, verbose=0)
    return quant_aware


def _qat_tflite(qat_model, path: Path, io_dtype: str) -> Path:
    lite = tf().lite
    converter = lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [lite.Optimize.DEFAULT]
    if io_dtype == "int8":
        converter.inference_input_type = converter.inference_output_type = tf().int8
    path.write_bytes(converter.convert())
    return path


@pytest.mark.parametrize("io_dtype", ["float32", "int8"])
def test_int8_tflite_to_onnx_runs_integer_kernels_and_matches_tflite(
    qat_model, digits, tmp_path, io_dtype
):
    tflite_path = _qat_tflite(qat_model, tmp_path / "qat.tflite", io_dtype)

    onnx_path = export_tflite(tflite_path, tmp_path / "qat.onnx")

    executed = runtime_op_counts(onnx_path)
    assert executed.get("QLinearConv") == 2 and "Conv" not in executed and "FusedConv" not in executed
    expected = _run_tflite(tflite_path.read_bytes(), digits["x_test"])
    exact = _run_onnx(onnx_path, digits["x_test"], fuse_qdq=False)
    assert (exact.argmax(1) == expected.argmax(1)).mean() >= 0.99  # the graph holds the same integers
    assert np.abs(exact - expected).max() <= 1e-5
    fused = _run_onnx(onnx_path, digits["x_test"])
    fused_vs_tflite = float((fused.argmax(1) == expected.argmax(1)).mean())
    check = kernel_agreement(onnx_path, digits["x_test"])
    if cpu_features()["u8s8_saturation"]:  # 16-bit intermediates may saturate: the check must see it
        assert check["top1"] == pytest.approx(fused_vs_tflite, abs=0.003)
        assert check["max_abs_diff"] == pytest.approx(float(np.abs(fused - expected).max()), abs=1e-5)
    else:  # VNNI, AMX, ARM dot product: the fused kernels compute the same integers
        assert fused_vs_tflite >= 0.99 and np.abs(fused - expected).max() <= 1e-5
        assert check["top1"] >= 0.99


def test_int8_tflite_to_onnx_gives_the_same_bytes_whatever_ran_before(qat_model, tmp_path):
    """tf2onnx numbers the names it invents with a counter that lives as long as the process,
    nested too (`X__28_DequantizeLinear__16`): a second export of the same file must still match."""
    tflite_path = _qat_tflite(qat_model, tmp_path / "qat.tflite", "int8")
    first = export_tflite(tflite_path, tmp_path / "first.onnx", reduce_range=True).read_bytes()
    second = export_tflite(tflite_path, tmp_path / "second.onnx", reduce_range=True).read_bytes()
    assert first == second


def test_seven_bit_qat_onnx_is_exact_on_every_cpu_and_keeps_accuracy(qat_model, digits, tmp_path):
    tflite_path = _qat_tflite(qat_model, tmp_path / "qat.tflite", "int8")

    onnx_path = export_tflite(tflite_path, tmp_path / "qat7.onnx", reduce_range=True)

    executed = runtime_op_counts(onnx_path)
    assert executed.get("QLinearConv") == 2 and "Conv" not in executed
    check = kernel_agreement(onnx_path, digits["x_test"])
    assert check["top1"] == 1.0 and check["max_abs_diff"] <= 1e-5
    labels = digits["y_test"]
    tflite_accuracy = (_run_tflite(tflite_path.read_bytes(), digits["x_test"]).argmax(1) == labels).mean()
    seven_bit_accuracy = (_run_onnx(onnx_path, digits["x_test"]).argmax(1) == labels).mean()
    assert abs(seven_bit_accuracy - tflite_accuracy) <= 0.02  # one bit less weight precision


def test_seven_bit_static_quantization_is_exact_on_every_cpu(fp32_onnx, digits, cnn, tmp_path):
    path = quantize_static(fp32_onnx, tmp_path / "int8_7bit.onnx", digits["x_train"][:200], reduce_range=True)
    assert runtime_op_counts(path).get("QLinearConv") == 2
    check = kernel_agreement(path, digits["x_test"])
    assert check["top1"] == 1.0 and check["max_abs_diff"] <= 1e-5
    keras_top1 = cnn.predict(digits["x_test"], verbose=0).argmax(1)
    assert (_run_onnx(path, digits["x_test"]).argmax(1) == keras_top1).mean() >= 0.9


@pytest.mark.parametrize(
    "damage",
    [lambda good: b"", lambda good: b"this is not a model", lambda good: good[: len(good) // 2]],
    ids=["empty", "text", "truncated"],
)
def test_bad_onnx_file_is_a_one_line_error(fp32_onnx, tmp_path, damage):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(damage(fp32_onnx.read_bytes()))
    with pytest.raises(EdgesmithError) as raised:
        load_checked(bad)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("model.onnx is not a valid ONNX model")


def test_missing_onnx_file_is_a_one_line_error(tmp_path):
    with pytest.raises(EdgesmithError, match="does not exist"):
        load_checked(tmp_path / "absent.onnx")


def _compile(model, learning_rate: float) -> None:
    tf_keras = keras()
    model.compile(
        tf_keras.optimizers.Adam(learning_rate),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


def _session(path: Path, fuse_qdq: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not fuse_qdq:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_onnx(path: Path, x: np.ndarray, fuse_qdq: bool = True) -> np.ndarray:
    return _session(path, fuse_qdq).run(None, {"input": x})[0]


def _run_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    """Run a TFLite model on a batch, quantizing integer input and dequantizing integer output."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], list(x.shape))
    interpreter.allocate_tensors()
    target = interpreter.get_output_details()[0]
    if np.issubdtype(source["dtype"], np.integer):
        scale, zero = source["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(source["dtype"])
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(target["index"])
    if np.issubdtype(target["dtype"], np.integer):
        scale, zero = target["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def test_onnx_int8_export_uses_the_documented_quantizer_settings(cnn, digits, tmp_path):
    """README: ONNX Runtime's static QDQ quantizer, S8S8, per-channel, MinMax calibration, opset 17
    by default: read them back from the file the onnx-cpu target's int8 export writes."""
    from onnx import TensorProto, numpy_helper

    from toolkit.config import Experiment
    from toolkit.runtimes import onnxruntime as ort_runtime
    from toolkit.targets import load_target

    calibration = digits["x_train"][:200]
    assert calibration.min() == 0.0 and calibration.max() == 1.0
    path = ort_runtime.export(cnn, tmp_path / "int8.onnx", load_target("onnx-cpu"), "int8", calibration,
                              Experiment().opset, quantization_aware=False)
    model = load_checked(path)
    assert {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}["ai.onnx"] == 17
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes = list(model.graph.node)
    quantize = [n for n in nodes if n.op_type == "QuantizeLinear"]
    dequantize = [n for n in nodes if n.op_type == "DequantizeLinear"]
    assert quantize and dequantize
    biases = {n.input[2] for n in nodes if n.op_type in ("Conv", "Gemm") and len(n.input) > 2}
    activations_and_weights = quantize + [n for n in dequantize if n.output[0] not in biases]
    assert len(activations_and_weights) > len(quantize)
    for node in activations_and_weights:  # S8S8: activations and weights are int8 (biases are int32)
        assert initializers[node.input[2]].data_type == TensorProto.INT8, node.name

    # per-channel weights: one scale per output channel of each Conv, along the axis of the channels
    conv_weights = {n.input[1] for n in nodes if n.op_type == "Conv"}
    channels = {}
    for name in conv_weights:
        producer = next(n for n in dequantize if n.output[0] == name)
        weights = numpy_helper.to_array(initializers[producer.input[0]])
        scale = numpy_helper.to_array(initializers[producer.input[1]])
        axis = next((a.i for a in producer.attribute if a.name == "axis"), 1)
        assert weights.dtype == np.int8 and scale.shape == (weights.shape[axis],) and axis == 0, (name, scale.shape, axis)
        assert not numpy_helper.to_array(initializers[producer.input[2]]).any(), "symmetric int8 weights"
        channels[weights.shape[0]] = len(set(np.round(scale, 12)))
    assert sorted(channels) == [8, 16] and all(distinct > 1 for distinct in channels.values()), channels

    # MinMax calibration: the input's range is exactly the calibration samples' range [0, 1]
    (reader,) = [n for n in nodes if "input" in n.input]  # the layout Reshape/Transpose tf2onnx puts first
    (first,) = [n for n in quantize if n.input[0] in (*reader.output, "input")]
    scale = float(numpy_helper.to_array(initializers[first.input[1]]))
    zero = int(numpy_helper.to_array(initializers[first.input[2]]))
    assert zero == -128 and scale == pytest.approx(1.0 / 255, rel=1e-6)


def test_the_quantizers_warnings_do_not_reach_the_terminal(tmp_path, caplog):
    """A BatchNormalization the export could not fold (after a Reshape, as MobileNetV3's last
    1×1 maps give) makes ONNX Runtime's quantizer print `WARNING:root:Axis 1 is out-of-range`
    for each of its weights: nothing a user can act on, so it is not shown."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    channels = 4
    weights = [numpy_helper.from_array(np.full(channels, value, np.float32), name)
               for name, value in (("scale", 1.5), ("bias", 0.1), ("mean", 0.2), ("var", 2.0))]
    weights.append(numpy_helper.from_array(np.array([1, channels, 1, 1], np.int64), "shape"))
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["map"]),
             helper.make_node("BatchNormalization", ["map", "scale", "bias", "mean", "var"], ["y"])]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 1, 1])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "bn.onnx")
    calibration = np.random.default_rng(0).normal(size=(8, channels)).astype(np.float32)
    quantize_static(tmp_path / "bn.onnx", tmp_path / "bn_int8.onnx", calibration)
    assert (tmp_path / "bn_int8.onnx").is_file()
    assert not [record for record in caplog.records if "out-of-range" in record.getMessage()]
