"""Static memory plan of a TFLite model's activation arena, the way TensorFlow Lite Micro plans it.

A microcontroller has no heap to grow into: every activation lives in one tensor arena whose
size is fixed at build time, so "does it fit" must be answered before anything runs. TFLM's
`GreedyMemoryPlanner` places each non-constant tensor, largest first, at the lowest offset
where it does not overlap a tensor alive at the same time (lifetimes from op order); the
peak offset is the arena's activation part. This module repeats that algorithm on the file,
and adds an estimate of the interpreter's own persistent bookkeeping (the arena's tail).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from toolkit.checks.flatbuffer import OpInfo, TFLiteGraph, read_tflite

ALIGNMENT = 16  # TFLM aligns every arena buffer to 16 bytes (MicroArenaBufferAlignment)
_ITEM_BYTES = {"int4": 1, "int8": 1, "uint8": 1, "bool": 1, "int16": 2, "uint16": 2, "float16": 2, "int32": 4,
               "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8, "complex64": 8}
# The persistent tail, calibrated against the recording allocator of tflite-micro's Python build
# (x86-64: 8-byte pointers) on the zoo's mlp, cnn and dscnn at two widths and two input sizes
# (within 4% of the recorded tail on each): 24 B per TfLiteEvalTensor (every tensor), 64 B per
# NodeAndRegistration plus about 98 B of kernel op data and parsed op options per op, 96 B per
# model input/output (a persistent TfLiteTensor with its quantization), 8 B per output channel
# (multiplier + shift) of every CONV_2D and DEPTHWISE_CONV_2D and of a FULLY_CONNECTED whose
# weights are quantized per channel, and about 460 B of interpreter state. On a 32-bit Cortex-M the pointer-sized parts are half as big,
# so this is an upper bound there.
_PER_TENSOR, _PER_OP, _PER_IO_TENSOR, _PER_CHANNEL, _FIXED = 24, 162, 96, 8, 460
_PER_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")  # FULLY_CONNECTED: only with per-channel weights


@dataclass(frozen=True)
class ArenaPlan:
    """The planned arena: activations (`peak_activation_bytes`) plus the interpreter's tail."""

    peak_activation_bytes: int
    persistent_bytes: int
    buffers: int

    @property
    def arena_bytes(self) -> int:
        return self.peak_activation_bytes + self.persistent_bytes

    def to_dict(self) -> dict[str, int]:
        return {"peak_activation_bytes": self.peak_activation_bytes, "persistent_bytes": self.persistent_bytes,
                "arena_bytes": self.arena_bytes, "buffers": self.buffers}


def plan_file(path: Path) -> ArenaPlan:
    """The arena plan of a .tflite file (a dynamic batch is planned at 1, as TFLM runs it)."""
    return plan_arena(read_tflite(path))


def plan_arena(graph: TFLiteGraph) -> ArenaPlan:
    buffers = _buffers(graph)
    return ArenaPlan(greedy_peak(buffers), _persistent_bytes(graph), len(buffers))


def greedy_peak(buffers: list[tuple[int, int, int]]) -> int:
    """Peak of TFLM's greedy placement of (size, first_op, last_op) buffers: largest first
    (stable, so ties keep their order), each at the lowest offset clear of every placed buffer
    whose lifetime overlaps its own."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    for size, first, last in sorted(buffers, key=lambda buffer: -buffer[0]):
        offset = 0
        for other_offset, other_size, other_first, other_last in sorted(placed):
            if other_first > last or first > other_last:
                continue  # not alive at the same time
            if other_offset - offset >= size:
                break  # the gap before this buffer is big enough
            offset = max(offset, other_offset + other_size)
        placed.append((offset, size, first, last))
    return max((offset + size for offset, size, _, _ in placed), default=0)


def _buffers(graph: TFLiteGraph) -> list[tuple[int, int, int]]:
    """(aligned size, first op, last op) of every tensor the arena holds, in tensor order.

    Model inputs exist from the start and outputs to the end; a non-constant tensor no op
    writes (a scratch operand) lives from its first reader to its last.
    """
    first: dict[int, int] = {index: 0 for index in graph.inputs}
    last: dict[int, int] = {}
    for op in graph.ops:
        for index in op.inputs:
            if index >= 0 and not graph.tensors[index].constant:
                first.setdefault(index, op.index)
                last[index] = op.index
        for index in op.outputs:
            first.setdefault(index, op.index)
            last.setdefault(index, op.index)
    for index in graph.outputs:
        last[index] = len(graph.ops) - 1
    return [(_aligned(_tensor_bytes(graph, index)), first[index], max(last.get(index, first[index]), first[index]))
            for index in sorted(first)]


def _tensor_bytes(graph: TFLiteGraph, index: int) -> int:
    tensor = graph.tensors[index]
    return math.prod(max(dim, 1) for dim in tensor.shape) * _ITEM_BYTES.get(tensor.dtype, 4)


def _aligned(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


def _persistent_bytes(graph: TFLiteGraph) -> int:
    channels = sum(graph.tensors[op.outputs[0]].shape[-1] for op in graph.ops if _per_channel_arrays(op, graph))
    io_tensors = len(set(graph.inputs) | set(graph.outputs))
    return (_PER_TENSOR * len(graph.tensors) + _PER_OP * len(graph.ops) + _PER_IO_TENSOR * io_tensors
            + _PER_CHANNEL * channels + _FIXED)


def _per_channel_arrays(op: OpInfo, graph: TFLiteGraph) -> bool:
    """Whether TFLM keeps a multiplier and a shift per output channel for this op."""
    if op.custom or not op.outputs or not graph.tensors[op.outputs[0]].shape:
        return False
    if op.name == "FULLY_CONNECTED":
        return len(op.inputs) > 1 and op.inputs[1] >= 0 and graph.tensors[op.inputs[1]].scales > 1
    return op.name in _PER_CHANNEL_OPS
