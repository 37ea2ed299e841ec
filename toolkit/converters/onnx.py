"""ONNX export: Keras models and int8 TFLite models (tf2onnx), plus loading with a clear error.

Every exported model takes float32 `input` and returns float32 `output`, whatever its precision,
so one ONNX Runtime runner serves all of them; int8 models quantize inside the graph.
Quantizers (`onnx_quant`), graph rewrites (`onnx_graph`) and loading (`onnx_files`) are re-exported
here as the one ONNX entry point.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from toolkit._tf import tf
from toolkit.converters.onnx_files import REEXPORT_FIX, load_checked
from toolkit.converters.onnx_graph import TensorQuant, make_qdq_fusable, reduce_weight_range, wrap_integer_io
from toolkit.converters.onnx_quant import quantize_dynamic, quantize_static
from toolkit.errors import EdgesmithError, first_line
from toolkit.files import write_bytes

__all__ = [
    "export_keras",
    "export_tflite",
    "load_checked",
    "quantize_dynamic",
    "quantize_static",
    "reduce_weight_range",
    "runtime_op_counts",
]

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_keras(
    model: Any, path: Path, input_shape: tuple[int, ...], opset: int = 17, fixed_batch: bool = False
) -> Path:
    """Export a tf_keras model to ONNX at `path`; `fixed_batch` pins the batch dim to 1."""
    tensorflow = tf()
    import tf2onnx

    batch = 1 if fixed_batch else None
    signature = (tensorflow.TensorSpec((batch, *input_shape), tensorflow.float32, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as error:  # tf2onnx raises many types; all mean "this model did not convert"
        raise EdgesmithError(
            f"could not export the Keras model to ONNX (opset {opset}): {first_line(error)}",
            "try another opset (14-18) or drop the ONNX target for this model",
        ) from error
    return _finish(proto, Path(path))


def export_tflite(tflite_path: Path, out_path: Path, opset: int = 17, reduce_range: bool = False) -> Path:
    """Convert a TFLite model (e.g. a QAT or PTQ int8 one) to ONNX, keeping its integer kernels.

    int8/uint8 model inputs and outputs become float32 with the TFLite scale and zero point
    applied inside the graph, and tf2onnx's QDQ pattern is rewritten so ONNX Runtime fuses it
    into QLinearConv/QGemm instead of running float kernels on dequantized tensors.
    `reduce_range` requantizes the weights to 7 bits (exact on every x86 CPU, one bit coarser).
    """
    tf()
    import tf2onnx

    tflite_path = Path(tflite_path)
    io_quant = _tflite_io_quantization(tflite_path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
            proto, _ = tf2onnx.convert.from_tflite(str(tflite_path), opset=opset)
    except Exception as error:
        raise EdgesmithError(
            f"could not convert {tflite_path.name} to ONNX (opset {opset}): {first_line(error)}",
            "try another opset (14-18) or export the Keras model with export_keras instead",
        ) from error
    wrap_integer_io(proto, io_quant)
    make_qdq_fusable(proto)
    if reduce_range:
        reduce_weight_range(proto)
    return _finish(proto, Path(out_path))


def runtime_op_counts(path: Path) -> dict[str, int]:
    """Op types ONNX Runtime really executes after its graph fusions, with counts.

    The stored graph of an int8 model is QDQ either way; only this tells a model that runs
    integer kernels (QLinearConv, QGemm, ...) from one that dequantizes and runs float kernels.
    """
    import tempfile

    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    # EXTENDED holds all QDQ fusions but not the machine-specific NCHWc layout rewrites.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    with tempfile.TemporaryDirectory(prefix="edgesmith-ort-") as folder:
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _tflite_io_quantization(tflite_path: Path) -> dict[str, TensorQuant]:
    """Scale, zero point and dtype of each integer input/output tensor of a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(tflite_path))
    except (ValueError, RuntimeError) as error:
        raise EdgesmithError(
            f"{tflite_path.name} is not a valid TFLite model ({first_line(error)})", REEXPORT_FIX
        ) from error
    details = interpreter.get_input_details() + interpreter.get_output_details()
    return {
        item["name"]: TensorQuant(np.dtype(item["dtype"]), *item["quantization"])
        for item in details
        if np.issubdtype(item["dtype"], np.integer) and item["quantization"][0] > 0
    }


def _number_generated_names_in_order(graph: Any) -> None:
    """Renumber tf2onnx's invented names (`scale__27`, `scale__27/7bit`, `Add__36:0`, dims
    `unk__8`) in the order the graph first uses them, and store the initializers sorted by name.

    tf2onnx hands out its numbers in an order that changes from process to process (from_tflite)
    and with what was converted before, so the same model gave ONNX files with other names and
    other bytes; numbered by position, the same input always gives the same file (a Ray
    worker's export matches a local one)."""
    generated = re.compile(r"__(\d+)")
    order: dict[str, int] = {}

    def renamed(name: str) -> str:
        """Each `__N` gets the number of the name up to it (`X__28_DequantizeLinear__16` holds
        two: the node `X__28`'s and its own), so every counter tf2onnx used is renumbered."""
        parts, start = [], 0
        for match in generated.finditer(name):
            order.setdefault(name[:match.end()], len(order) + 1)
            parts += [name[start:match.start()], f"__{order[name[:match.end()]]}"]
            start = match.end()
        return "".join(parts) + name[start:]

    for node in graph.node:  # the node order is stable; the initializers' order is not
        node.input[:] = [renamed(name) for name in node.input]
        node.output[:] = [renamed(name) for name in node.output]
        node.name = renamed(node.name)
    for value in [*graph.initializer, *graph.input, *graph.output, *graph.value_info]:
        value.name = renamed(value.name)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = renamed(dim.dim_param)
    initializers = sorted(graph.initializer, key=lambda tensor: tensor.name)
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _finish(proto: Any, path: Path) -> Path:
    """Give inputs/outputs their standard names, validate, and write atomically."""
    import onnx

    _number_generated_names_in_order(proto.graph)
    _rename_io(proto)
    onnx.checker.check_model(proto)
    write_bytes(path, proto.SerializeToString())
    return path


def _rename_io(proto: Any) -> None:
    """Name graph inputs `input` and outputs `output` (suffixed `_i` when there are several)."""
    renames: dict[str, str] = {}
    for values, base in ((proto.graph.input, INPUT_NAME), (proto.graph.output, OUTPUT_NAME)):
        for index, value in enumerate(values):
            renames[value.name] = base if len(values) == 1 else f"{base}_{index}"
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames[value.name]
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]

