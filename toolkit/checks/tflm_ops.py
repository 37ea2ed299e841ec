"""Which builtin ops the installed TensorFlow Lite Micro can run, asked of TFLM itself.

TFLM's op list changes from release to release, so it is not written down here: each builtin
op is put into a two-op model whose second op is a custom op no resolver has. TFLM looks up
every op's kernel in its op resolver, in order, before running anything, and stops at the first op it cannot
find. If that is the custom op, the builtin has a kernel.
"""
from __future__ import annotations

import functools

PROBE_OP = "edgesmith-probe"  # a custom op name no TFLM build registers
_CUSTOM_MISSING = "op code CUSTOM"  # TFLM's words when the lookup failed at the custom op


@functools.cache
def tflm_builtin_ops() -> frozenset[str]:
    """Names of the builtin ops the installed TFLM's op resolver has kernels for."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from toolkit.benchmark.tflm import interpreter
    from toolkit.errors import EdgesmithError

    codes = {name: code for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_") and name != "CUSTOM"}
    found = set()
    for name, code in codes.items():
        try:
            interpreter(_probe_model(schema, code), 4096, name)
        except EdgesmithError as error:
            if _CUSTOM_MISSING in str(error):
                found.add(name)
    return frozenset(found)


def tflm_version() -> str:
    from importlib.metadata import version

    return version("tflite-micro")


def _probe_model(schema, code: int) -> bytes:
    """A flatbuffer with two input-less ops: builtin `code`, then the unregistered custom op."""
    import flatbuffers

    builtin, custom = schema.OperatorCodeT(), schema.OperatorCodeT()
    builtin.builtinCode, builtin.deprecatedBuiltinCode, builtin.version = code, min(code, 127), 1
    custom.builtinCode = custom.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    custom.customCode, custom.version = PROBE_OP, 1
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = [], [], [], []
    for index in (0, 1):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, [], []
        if code == schema.BuiltinOperator.VAR_HANDLE and index == 0:
            # tflite-micro's Python wrapper reads this op's options before TFLM sees the model
            op.builtinOptionsType = schema.BuiltinOptions.VarHandleOptions
            op.builtinOptions = schema.VarHandleOptionsT()
        subgraph.operators.append(op)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [builtin, custom], [subgraph], [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
