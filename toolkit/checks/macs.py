"""Multiply-accumulates per op, from tensor shapes alone.

MACs say where the work is: an Edge TPU that maps 5 of 8 ops may still do 99% of the
arithmetic, or 1%. Only the ops that dominate CNN/MLP cost are counted; the rest count 0.
"""
from __future__ import annotations

import math

from toolkit.checks.flatbuffer import OpInfo, TFLiteGraph


def op_macs(op: OpInfo, graph: TFLiteGraph) -> int:
    """MACs of one inference of `op` (batch as stored in the file, -1 read as 1)."""
    counter = _COUNTERS.get(op.name)
    if counter is None:
        return 0
    try:
        return max(int(counter(op, graph)), 0)
    except (IndexError, ValueError, ZeroDivisionError):
        return 0  # an unusual layout: better no number than a wrong one


def _shape(graph: TFLiteGraph, index: int) -> tuple[int, ...]:
    return tuple(max(d, 1) for d in graph.tensors[index].shape)


def _conv(op: OpInfo, graph: TFLiteGraph) -> int:
    _, kh, kw, cin = _shape(graph, op.inputs[1])  # filter [Cout, kh, kw, Cin]
    return math.prod(_shape(graph, op.outputs[0])) * kh * kw * cin


def _depthwise(op: OpInfo, graph: TFLiteGraph) -> int:
    _, kh, kw, _ = _shape(graph, op.inputs[1])  # filter [1, kh, kw, Cout]
    return math.prod(_shape(graph, op.outputs[0])) * kh * kw


def _fully_connected(op: OpInfo, graph: TFLiteGraph) -> int:
    _, depth = _shape(graph, op.inputs[1])  # weights [units, depth]
    return math.prod(_shape(graph, op.outputs[0])) * depth


def _transpose_conv(op: OpInfo, graph: TFLiteGraph) -> int:
    cout, kh, kw, _ = _shape(graph, op.inputs[1])  # inputs: output_shape, filter, input
    return math.prod(_shape(graph, op.inputs[2])) * kh * kw * cout


def _batch_matmul(op: OpInfo, graph: TFLiteGraph) -> int:
    left = _shape(graph, op.inputs[0])
    depth = left[-2] if op.adj_x else left[-1]
    return math.prod(_shape(graph, op.outputs[0])) * depth


_COUNTERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "TRANSPOSE_CONV": _transpose_conv,
    "BATCH_MATMUL": _batch_matmul,
}
