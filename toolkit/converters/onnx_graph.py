"""Rewrites of ONNX graphs with QuantizeLinear/DequantizeLinear (QDQ) nodes: a float interface
around integer I/O, patterns ONNX Runtime can fuse into integer kernels, and 7-bit weights.

`reduce_weight_range` exists because on x86 CPUs without VNNI the runtime's u8×s8 kernels add
pairs of products in 16 bits, and 255 × 127 × 2 overflows that; 255 × 64 × 2 does not (see
toolkit.cpu_features).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

# Ops that only move elements, so a per-tensor QuantizeLinear commutes with them.
_LAYOUT_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten"}
# Input index of the weight of each op whose integer kernel multiplies activations by weights.
_WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
SEVEN_BIT_MAX = 64  # ORT's reduce_range int8 weight range is [-64, 64]


class TensorQuant(NamedTuple):
    """How an integer tensor maps to real values: real = scale * (q - zero_point)."""

    dtype: np.dtype
    scale: float
    zero_point: int


def wrap_integer_io(model: Any, io_quant: dict[str, TensorQuant]) -> None:
    """Turn integer graph inputs/outputs into float32 ones with the same quantization inside.

    Besides giving every ONNX model the same float interface, this puts a QuantizeLinear in
    front of the first layer: ONNX Runtime on x86 runs int8 convolutions on activations it
    re-quantizes from Q/DQ pairs, so a raw int8 graph input would leave that layer in float.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    nodes_before, nodes_after = [], []
    for value, is_input in [(v, True) for v in graph.input] + [(v, False) for v in graph.output]:
        quant = io_quant.get(value.name)
        if quant is None:
            continue
        name = value.name
        scale = numpy_helper.from_array(np.array(quant.scale, np.float32), f"{name}/io_scale")
        zero = numpy_helper.from_array(np.array(quant.zero_point, quant.dtype), f"{name}/io_zero_point")
        graph.initializer.extend([scale, zero])
        value.name = f"{name}/float"
        value.type.tensor_type.elem_type = TensorProto.FLOAT
        if is_input:
            nodes_before.append(helper.make_node("QuantizeLinear", [value.name, scale.name, zero.name], [name]))
        else:
            nodes_after.append(helper.make_node("DequantizeLinear", [name, scale.name, zero.name], [value.name]))
    if nodes_before or nodes_after:
        _replace_nodes(graph, nodes_before + list(graph.node) + nodes_after)


def make_qdq_fusable(model: Any) -> None:
    """Rewrite tf2onnx's QDQ graph so ONNX Runtime fuses it into integer kernels.

    Two patterns from TFLite models block the fusion: a layout op between QuantizeLinear and
    DequantizeLinear (Q -> Reshape -> DQ), and an activation between a layer and its output
    QuantizeLinear that the runtime cannot fold (Conv -> Relu -> Q with zero point above the
    minimum, as QAT produces). The integers computed stay the same (for Clip they can differ
    by one step for values that round across a clip bound).
    """
    constants = _constants(model.graph)
    while _move_quantize_past_layout_op(model.graph, constants):
        pass
    _quantize_before_activations(model.graph, constants)
    _sort_topologically(model.graph)


def reduce_weight_range(model: Any) -> int:
    """Requantize full-range int8 weights of Conv/Gemm/MatMul to 7 bits; returns how many.

    Each weight keeps its (per-channel) scale doubled, so the float graph means the same up to
    one 7-bit step; the int32 bias the runtime fuses into the layer (Conv/Gemm input 2, or the
    Add after a MatMul) is stored at input scale × weight scale, so it is rescaled with it.
    """
    from onnx import numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    original = set(initializers)
    producers = {name: node for node in graph.node for name in node.output}
    consumers = _consumers(graph)
    reduced = 0
    for layer in graph.node:
        index = _WEIGHT_INPUT.get(layer.op_type)
        dequantize = producers.get(layer.input[index]) if index is not None and len(layer.input) > index else None
        if not _is_constant_dequantize(dequantize, initializers):
            continue
        weights = numpy_helper.to_array(initializers[dequantize.input[0]])
        zero = _zero_point(dequantize, initializers)
        if weights.dtype != np.int8 or np.any(zero != 0) or np.abs(weights.astype(np.int32)).max() <= SEVEN_BIT_MAX:
            continue
        halved = np.clip(np.round(weights / 2.0), -SEVEN_BIT_MAX, SEVEN_BIT_MAX).astype(np.int8)
        _halve_integers(dequantize, initializers, halved)
        for bias in _fused_bias_inputs(layer, consumers):
            bias_dequantize = producers.get(bias)
            if _is_constant_dequantize(bias_dequantize, initializers):
                values = numpy_helper.to_array(initializers[bias_dequantize.input[0]])
                _halve_integers(bias_dequantize, initializers, np.round(values / 2.0).astype(values.dtype))
        reduced += 1
    graph.initializer.extend(initializers[name] for name in initializers if name not in original)
    _drop_unused_initializers(graph)
    return reduced


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _is_constant_dequantize(node: Any, initializers: dict[str, Any]) -> bool:
    return node is not None and node.op_type == "DequantizeLinear" and node.input[0] in initializers


def _zero_point(dequantize: Any, initializers: dict[str, Any]) -> np.ndarray:
    from onnx import numpy_helper

    if len(dequantize.input) > 2 and dequantize.input[2] in initializers:
        return numpy_helper.to_array(initializers[dequantize.input[2]])
    return np.zeros(1, np.int8)


def _halve_integers(dequantize: Any, initializers: dict[str, Any], values: np.ndarray) -> None:
    """Point `dequantize` at new initializers holding `values` (the old integers halved) and a
    doubled scale, so real values stay; new names, because tf2onnx may share initializers."""
    from onnx import numpy_helper

    scale = numpy_helper.to_array(initializers[dequantize.input[1]])
    for slot, array in ((0, values), (1, (scale * 2).astype(scale.dtype))):
        name = f"{dequantize.input[slot]}/7bit"
        initializers[name] = numpy_helper.from_array(array, name)
        dequantize.input[slot] = name


def _fused_bias_inputs(layer: Any, consumers: dict[str, list[Any]]) -> list[str]:
    if layer.op_type in ("Conv", "ConvTranspose", "Gemm"):
        return list(layer.input[2:3])
    adds = [node for node in consumers.get(layer.output[0], []) if node.op_type == "Add"]
    return [name for node in adds for name in node.input if name != layer.output[0]]


def _move_quantize_past_layout_op(graph: Any, constants: dict[str, np.ndarray]) -> bool:
    """Q(x) -> Reshape  becomes  Reshape(x) -> Q, for one per-tensor Q; True if one moved."""
    consumers = _consumers(graph)
    graph_outputs = {value.name for value in graph.output}
    for quantize in graph.node:
        if quantize.op_type != "QuantizeLinear" or quantize.output[0] in graph_outputs:
            continue
        users = consumers.get(quantize.output[0], [])
        scale = constants.get(quantize.input[1])
        if len(users) != 1 or users[0].op_type not in _LAYOUT_OPS or scale is None or scale.size != 1:
            continue
        layout, between, result = users[0], quantize.output[0], users[0].output[0]
        layout.input[0] = quantize.input[0]
        layout.output[0] = f"{result}/float"
        quantize.input[0] = layout.output[0]
        quantize.output[0] = result
        _drop_value_info(graph, {between})
        return True
    return False


def _quantize_before_activations(graph: Any, constants: dict[str, np.ndarray]) -> None:
    """Layer -> Relu/Clip -> Q  becomes  Layer -> Q -> DQ -> Relu/Clip -> Q when the runtime
    cannot drop the activation itself, so the layer fuses into an integer kernel."""
    from onnx import helper

    consumers = _consumers(graph)
    producers = {name: node for node in graph.node for name in node.output}
    for activation in [node for node in graph.node if node.op_type in ("Relu", "Clip")]:
        users = consumers.get(activation.output[0], [])
        producer = producers.get(activation.input[0])
        if len(users) != 1 or users[0].op_type != "QuantizeLinear" or producer is None:
            continue
        if producer.op_type == "DequantizeLinear" or _runtime_drops(activation, users[0], constants):
            continue
        quant_inputs = list(users[0].input[1:])
        quantized, restored = f"{activation.input[0]}/q", f"{activation.input[0]}/dq"
        graph.node.extend(
            [
                helper.make_node("QuantizeLinear", [activation.input[0], *quant_inputs], [quantized]),
                helper.make_node("DequantizeLinear", [quantized, *quant_inputs], [restored]),
            ]
        )
        activation.input[0] = restored


def _runtime_drops(activation: Any, quantize: Any, constants: dict[str, np.ndarray]) -> bool:
    """True when the Q's integer range already lies inside the activation's output range, the
    condition under which ONNX Runtime removes the activation itself (Relu/ClipQuantFusion)."""
    scale = constants.get(quantize.input[1])
    zero = constants.get(quantize.input[2]) if len(quantize.input) > 2 else np.array(0, np.uint8)
    if scale is None or zero is None or scale.size != 1:
        return False
    info = np.iinfo(zero.dtype)
    lower = float(scale) * (info.min - int(zero))
    upper = float(scale) * (info.max - int(zero))
    if activation.op_type == "Relu":
        return lower >= 0.0
    bounds = [constants.get(name) for name in activation.input[1:3]]
    low = float(bounds[0]) if len(bounds) > 0 and bounds[0] is not None else -np.inf
    high = float(bounds[1]) if len(bounds) > 1 and bounds[1] is not None else np.inf
    return low <= lower + 1e-7 and high >= upper - 1e-7


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _consumers(graph: Any) -> dict[str, list[Any]]:
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _drop_value_info(graph: Any, names: set[str]) -> None:
    """Forget recorded types of tensors a rewrite removed, so no stale entry stays behind."""
    kept = [value for value in graph.value_info if value.name not in names]
    del graph.value_info[:]
    graph.value_info.extend(kept)


def _sort_topologically(graph: Any) -> None:
    """Reorder nodes so each comes after the producers of its inputs (ONNX requires it)."""
    nodes = list(graph.node)
    producer = {name: index for index, node in enumerate(nodes) for name in node.output}
    waiting_on = [{producer[name] for name in node.input if name in producer} for node in nodes]
    dependents: dict[int, list[int]] = {}
    for index, sources in enumerate(waiting_on):
        for source in sources:
            dependents.setdefault(source, []).append(index)
    ready = [index for index, sources in enumerate(waiting_on) if not sources]
    order = []
    while ready:
        index = ready.pop(0)
        order.append(index)
        for dependent in dependents.get(index, []):
            waiting_on[dependent].discard(index)
            if not waiting_on[dependent]:
                ready.append(dependent)
    if len(order) != len(nodes):
        raise ValueError("the ONNX graph has a cycle")
    _replace_nodes(graph, [nodes[index] for index in order])


def _replace_nodes(graph: Any, nodes: list[Any]) -> None:
    """Set the graph's node list (copies first: clearing the field invalidates its members)."""
    copies = [type(node)() for node in nodes]
    for copy, node in zip(copies, nodes):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
