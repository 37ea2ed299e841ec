"""Read a .tflite flatbuffer into plain dataclasses: ops (name, version) and tensors.

The check must work on any .tflite file, including ones edgesmith did not write, so it reads
the model with the schema that ships in the LiteRT wheel instead of asking an interpreter
(which would apply delegates and hide the original graph).
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import EdgesmithError

IDENTIFIER = b"TFL3"


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    dtype: str  # "float32", "int8", ...
    shape: tuple[int, ...]
    signature: tuple[int, ...]  # shape_signature: -1 marks a dynamic dimension
    constant: bool  # holds data in the file (weights, biases, shape operands)
    nbytes: int  # bytes of that data, 0 for activations
    scales: int = 0  # quantization scales: 1 per tensor, one per channel when per-channel quantized


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # builtin name (CONV_2D) or the custom op's name
    version: int
    custom: bool
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    adj_x: bool = False  # BATCH_MATMUL only: first operand transposed


@dataclass(frozen=True)
class TFLiteGraph:
    """The main subgraph of a model, ops in execution order."""

    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraphs: int

    def runtime_tensors(self, op: OpInfo) -> list[TensorInfo]:
        """Tensors the op reads or writes at inference time (constants excluded)."""
        indices = [i for i in op.inputs if i >= 0] + list(op.outputs)
        return [self.tensors[i] for i in indices if not self.tensors[i].constant]

    def constant_inputs(self, op: OpInfo) -> list[TensorInfo]:
        return [self.tensors[i] for i in op.inputs if i >= 0 and self.tensors[i].constant]


@functools.cache
def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@functools.cache
def builtin_op_names() -> dict[int, str]:
    """Builtin operator code -> name, from the schema of the installed LiteRT."""
    ops = _schema().BuiltinOperator
    return {code: name for name, code in vars(ops).items() if not name.startswith("_")}


@functools.cache
def _type_names() -> dict[int, str]:
    types = _schema().TensorType
    return {code: name.lower() for name, code in vars(types).items() if not name.startswith("_")}


def is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == IDENTIFIER


def read_tflite(path: Path) -> TFLiteGraph:
    """Parse `path`; a truncated or corrupt file becomes one EdgesmithError line."""
    data = Path(path).read_bytes()
    if not is_tflite(data):
        raise EdgesmithError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier)",
                             "pass a .tflite file written by the TFLite/LiteRT converter")
    try:
        graph = _parse(data)
    except (struct.error, IndexError, KeyError, ValueError, TypeError, UnicodeDecodeError, AttributeError) as error:
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise EdgesmithError(f"{path} is a truncated or corrupt TFLite model ({detail})",
                             "re-export the model; the file on disk is damaged") from None
    if not graph.ops:
        raise EdgesmithError(f"{path} has no operators in its main subgraph", "pass a converted model, not an empty one")
    return graph


def _parse(data: bytes) -> TFLiteGraph:
    schema = _schema()
    model = schema.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("the model has no subgraph")
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    codes = [_op_code(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    graph = model.Subgraphs(0)
    tensors = tuple(_tensor(graph.Tensors(i), i, buffers) for i in range(graph.TensorsLength()))
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name, version, custom = codes[op.OpcodeIndex()]
        inputs = tuple(int(t) for t in op.InputsAsNumpy()) if op.InputsLength() else ()
        outputs = tuple(int(t) for t in op.OutputsAsNumpy()) if op.OutputsLength() else ()
        for t in inputs + outputs:
            if t >= len(tensors):
                raise IndexError(f"op {i} refers to tensor {t} of {len(tensors)}")
        ops.append(OpInfo(i, name, version, custom, inputs, outputs, _adj_x(op, name)))
    inputs = tuple(int(t) for t in graph.InputsAsNumpy()) if graph.InputsLength() else ()
    outputs = tuple(int(t) for t in graph.OutputsAsNumpy()) if graph.OutputsLength() else ()
    return TFLiteGraph(tensors, tuple(ops), inputs, outputs, model.SubgraphsLength())


def _op_code(code) -> tuple[str, int, bool]:
    number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if number == _schema().BuiltinOperator.CUSTOM:
        return (code.CustomCode() or b"").decode("utf-8"), max(code.Version(), 1), True
    return builtin_op_names()[number], max(code.Version(), 1), False


def _tensor(tensor, index: int, buffers: list) -> TensorInfo:
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    signature = tuple(int(d) for d in tensor.ShapeSignatureAsNumpy()) if tensor.ShapeSignatureLength() else shape
    nbytes = 0
    if 0 < tensor.Buffer() < len(buffers) and not tensor.IsVariable():
        buffer = buffers[tensor.Buffer()]
        nbytes = buffer.DataLength() or (buffer.Size() if buffer.Offset() > 1 else 0)
    name = (tensor.Name() or b"").decode("utf-8", errors="replace")
    quantization = tensor.Quantization()
    scales = quantization.ScaleLength() if quantization is not None else 0
    return TensorInfo(index, name, _type_names()[tensor.Type()], shape, signature, nbytes > 0, nbytes, scales)


def _adj_x(op, name: str) -> bool:
    if name != "BATCH_MATMUL" or op.BuiltinOptions() is None:
        return False
    options = _schema().BatchMatMulOptions()
    table = op.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    return bool(options.AdjX())
