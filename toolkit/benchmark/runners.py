"""Runtimes behind one interface, so LiteRT and ONNX Runtime rows are measured the same way.

A runner owns the (de)quantization of integer I/O: callers always pass float inputs scaled as
in training and get float scores back, so accuracy is comparable across precisions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from toolkit.errors import EdgesmithError, first_line

EVAL_CHUNK = 256


class Runner(Protocol):
    """What the harness needs: load once, set an input, invoke, read scores."""

    batch_dynamic: bool
    input_shape: tuple[int, ...]

    def set_input(self, x: np.ndarray) -> None: ...

    def invoke(self) -> None: ...

    def output(self) -> np.ndarray: ...


def open_runner(path: Path, threads: int = 1) -> Runner:
    """Load `path` in the runtime that reads it (recognised by the runtime registry)."""
    from toolkit.runtimes import runtime_for_file

    return runtime_for_file(path, trust_extension=True).open_runner(Path(path), threads)


def predict(runner: Runner, x: np.ndarray) -> np.ndarray:
    """Scores for every sample: in chunks where the batch is dynamic, one by one otherwise."""
    step = EVAL_CHUNK if runner.batch_dynamic else 1
    outputs = []
    for start in range(0, len(x), step):
        runner.set_input(x[start : start + step])
        runner.invoke()
        outputs.append(runner.output())
    return np.concatenate(outputs)


class LiteRTRunner:
    """LiteRT interpreter (XNNPACK on by default), the runtime shipped on Android and Linux."""

    def __init__(self, path: Path, threads: int = 1, reference_kernels: bool = False) -> None:
        """`reference_kernels`: LiteRT's portable reference kernels instead of its optimized ones
        and XNNPACK (the integer math TFLite Micro's kernels are written from)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads,
                                           experimental_op_resolver_type=resolver)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise EdgesmithError(f"{path} is not a loadable TFLite model ({first_line(exc)})", "re-export the .tflite file") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.batch_dynamic = int(self._input["shape_signature"][0]) == -1
        self._batch = int(self._input["shape"][0])
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])

    def set_input(self, x: np.ndarray) -> None:
        if len(x) != self._batch:
            if not self.batch_dynamic:
                raise EdgesmithError(f"this model's batch is fixed to {self._batch}", "feed one sample at a time")
            self.interpreter.resize_tensor_input(self._input["index"], [len(x), *self._input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._input["index"], _quantize(x, self._input))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


class OnnxRuntimeRunner:
    """ONNX Runtime CPU provider with the same thread setting as LiteRT."""

    def __init__(self, path: Path, threads: int = 1, validate: bool = True, fuse_qdq: bool = True) -> None:
        """`fuse_qdq=False` keeps Q/DQ nodes unfused: exact integer math in float kernels."""
        import onnxruntime as ort

        if validate:  # a corrupt file gets our one-line error instead of ORT's
            from toolkit.converters.onnx_files import load_checked

            load_checked(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if not fuse_qdq:  # the QDQ fusions into integer kernels start at the EXTENDED level
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self._input_name = model_input.name
        self._output_name = self.session.get_outputs()[0].name
        self.batch_dynamic = not isinstance(model_input.shape[0], int)
        self.input_shape = tuple(int(d) for d in model_input.shape[1:])
        self._feed: dict[str, np.ndarray] = {}
        self._result: np.ndarray | None = None

    def set_input(self, x: np.ndarray) -> None:
        self._feed = {self._input_name: np.ascontiguousarray(x, dtype=np.float32)}

    def invoke(self) -> None:
        self._result = self.session.run([self._output_name], self._feed)[0]

    def output(self) -> np.ndarray:
        assert self._result is not None, "invoke() before output()"
        return self._result


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input → the model's input dtype using its scale/zero-point (identity for float)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)
