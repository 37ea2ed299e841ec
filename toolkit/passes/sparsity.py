"""Measure what compression left in the weights: zeros, m:n patterns, distinct values.

Measured twice on purpose: on the Keras model (what the pass produced) and on the exported
TFLite flatbuffer (what ships), so a converter that re-densifies or re-orders weights is caught.
TFLite stores FULLY_CONNECTED weights as [out, in] and CONV_2D as [out, h, w, in]: the input
channel is always the last axis, which is the axis m:n groups run along.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import EdgesmithError
from toolkit.passes.context import unwrap

KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
M_BY_N_OPS = ("FULLY_CONNECTED", "CONV_2D")


def _kernels(model: Any) -> dict[str, np.ndarray]:
    """Kernel of every weighted layer, looking through tfmot wrappers.

    Read from the wrapper's variables: inside a QAT wrapper `kernel` is a fake-quant tensor.
    """
    kernels = {}
    for layer in model.layers:
        inner = unwrap(layer)
        for variable in layer.weights:
            kind = variable.name.split("/")[-1].split(":")[0]
            if kind in KERNEL_ATTRIBUTES:
                kernels[inner.name if kind == "kernel" else f"{inner.name}/{kind}"] = variable.numpy()
    return kernels


def keras_sparsity(model: Any) -> dict[str, float]:
    """Fraction of exact zeros per layer kernel."""
    return {name: round(float(np.mean(kernel == 0)), 4) for name, kernel in _kernels(model).items()}


def unique_weight_counts(model: Any) -> dict[str, int]:
    """Distinct values per layer kernel (≤ the cluster count after clustering)."""
    return {name: int(np.unique(kernel).size) for name, kernel in _kernels(model).items()}


@dataclass(frozen=True)
class WeightTensor:
    """A constant weight tensor of one TFLite op; `zero` is the stored value meaning 0.0."""

    op: str
    name: str
    values: np.ndarray
    zero: np.ndarray | float

    def is_zero(self) -> np.ndarray:
        return self.values == self.zero


def tflite_weights(model_bytes: bytes) -> list[WeightTensor]:
    """Weight tensors of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D ops, in graph order.

    fp16 models feed weights through a DEQUANTIZE op; the constant behind it is read instead.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    op_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = [op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM") for code in model.operatorCodes]
    weights = []
    for graph in model.subgraphs:
        producers = {int(out): op for op in graph.operators for out in op.outputs}
        for op in graph.operators:
            kind = codes[op.opcodeIndex]
            if kind not in WEIGHT_OPS or len(op.inputs) < 2:
                continue
            index = int(op.inputs[1])
            producer = producers.get(index)
            if producer is not None and codes[producer.opcodeIndex] == "DEQUANTIZE":
                index = int(producer.inputs[0])
            tensor = graph.tensors[index]
            values = _constant(model, tensor, model_bytes, schema)
            if values is not None:
                weights.append(WeightTensor(kind, tensor.name.decode(), values, _zero_value(tensor, values)))
    return weights


def _constant(model: Any, tensor: Any, model_bytes: bytes, schema: Any) -> np.ndarray | None:
    if tensor.sparsity is not None:
        raise EdgesmithError(
            f"weight tensor {tensor.name.decode()} is stored in TFLite's compressed sparse format",
            "measure a model converted without Optimize.EXPERIMENTAL_SPARSITY",
        )
    buffer = model.buffers[tensor.buffer]
    if buffer.offset > 1:
        raw = bytes(model_bytes[buffer.offset : buffer.offset + buffer.size])
    elif buffer.data is not None and len(buffer.data):
        raw = bytes(np.asarray(buffer.data, dtype=np.uint8))
    else:
        return None
    dtypes = {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.INT8: np.int8,
        schema.TensorType.UINT8: np.uint8,
    }
    if tensor.type not in dtypes:
        return None
    return np.frombuffer(raw, dtype=dtypes[tensor.type]).reshape(list(tensor.shape))


def _zero_value(tensor: Any, values: np.ndarray) -> np.ndarray | float:
    """Quantized weights encode 0.0 as the zero point (per channel along `quantizedDimension`)."""
    quant = tensor.quantization
    if quant is None or quant.zeroPoint is None or len(quant.zeroPoint) == 0 or values.dtype.kind == "f":
        return 0.0
    zero_points = np.asarray(quant.zeroPoint, dtype=np.int64)
    if zero_points.size == 1:
        return float(zero_points[0])
    shape = [1] * values.ndim
    shape[quant.quantizedDimension] = zero_points.size
    return zero_points.reshape(shape)


def tflite_sparsity(model_bytes: bytes) -> list[dict[str, Any]]:
    """Per weight tensor of an exported model: op, name, shape and the fraction of zeros."""
    return [
        {
            "op": weight.op,
            "tensor": weight.name,
            "shape": list(weight.values.shape),
            "sparsity": round(float(weight.is_zero().mean()), 4),
        }
        for weight in tflite_weights(model_bytes)
    ]


def m_by_n_report(model_bytes: bytes, m: int = 2, n: int = 4) -> list[dict[str, Any]]:
    """For FULLY_CONNECTED / CONV_2D weights whose input channels divide by n: how many groups of
    n consecutive input-channel weights hold fewer than m zeros (`violations`, 0 = valid m:n)."""
    report = []
    for weight in tflite_weights(model_bytes):
        channels_in = weight.values.shape[-1]
        if weight.op not in M_BY_N_OPS or channels_in % n:
            continue
        zeros_per_group = weight.is_zero().reshape(-1, n).sum(axis=1)
        report.append(
            {
                "tensor": weight.name,
                "shape": list(weight.values.shape),
                "groups": int(zeros_per_group.size),
                "violations": int((zeros_per_group < m).sum()),
            }
        )
    return report
