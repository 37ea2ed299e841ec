"""The runners that run where the model will run: LiteRT (with a delegate if asked) and ONNX Runtime.

Self-contained on purpose, like `device_bench` (numpy and the runtimes, nothing else): it is
copied to devices and imported here, so both sides load, feed and read a model the same way. A
runner owns the (de)quantization of integer I/O: callers pass float inputs scaled as in
training and get float scores back, so accuracy is comparable across precisions.
"""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np

EVAL_CHUNK = 256
# LiteRT delegates a target profile can ask for (`[accelerator] delegate = ...`), and the
# library each loads. Loaded explicitly: if it does not load, nothing is timed.
DELEGATES = {
    "gpu": ("LiteRT GPU delegate", "libtensorflowlite_gpu_delegate.so"),
    "edgetpu": ("Edge TPU", "libedgetpu.so.1"),
}


class BenchError(Exception):
    """A problem the user can fix, as one line: what went wrong and what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem} — {fix}")


class Runner(Protocol):
    """What the method needs: load once, set an input, invoke, read scores."""

    batch_dynamic: bool
    input_shape: tuple[int, ...]

    def set_input(self, x: np.ndarray) -> None: ...

    def invoke(self) -> None: ...

    def output(self) -> np.ndarray: ...


def runtime(suffix: str) -> Any:
    """The runtime module for ".tflite" or ".onnx" files, or which package this Python lacks (on
    a device, the usual fault; the host checks first, from its runtime registry)."""
    try:
        if suffix == ".onnx":
            import onnxruntime

            return onnxruntime
        from ai_edge_litert import interpreter

        return interpreter
    except ImportError as exc:
        package = (exc.name or "the runtime").split(".")[0].replace("_", "-")
        raise BenchError(f"{package} is not installed for {sys.executable} ({exc})", f"pip install {package}") from None


def load_delegate(kind: str) -> Any:
    """The LiteRT delegate a profile asks for; a delegate that does not load is an error, never a
    silent fallback to the CPU."""
    name, library = DELEGATES[kind]
    interpreter = runtime(".tflite")
    try:
        ctypes.CDLL(library)  # first, as LiteRT's loader leaves a half-built object that warns on exit
        return interpreter.load_delegate(library)
    except (OSError, ValueError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BenchError(f"{name} not available: {library} does not load ({reason})",
                         f"install {library} and its driver on the device, or time this target on the host") from None


class LiteRTRunner:
    """LiteRT interpreter (XNNPACK on by default, or the given delegate), as shipped on Android and Linux."""

    def __init__(self, path: Path, threads: int = 1, delegate: str | None = None, reference_kernels: bool = False) -> None:
        """`reference_kernels`: LiteRT's portable reference kernels instead of its optimized ones
        and XNNPACK (the integer math TFLite Micro's kernels are written from)."""
        interpreter = runtime(".tflite")
        delegates = [load_delegate(delegate)] if delegate else None
        resolver = interpreter.OpResolverType.BUILTIN_REF if reference_kernels else interpreter.OpResolverType.AUTO
        if delegate == "edgetpu" and b"edgetpu-custom-op" not in Path(path).read_bytes():
            raise BenchError(f"{Path(path).name} is not compiled for the Edge TPU (it has no edgetpu-custom-op)",
                             "compile it with edgetpu_compiler; as it is, every op would run on the CPU")
        try:
            self.interpreter = interpreter.Interpreter(model_path=str(path), num_threads=threads,
                                                       experimental_delegates=delegates,
                                                       experimental_op_resolver_type=resolver)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            if "custom op: ethos-u" in reason:
                raise BenchError(f"{Path(path).name} is compiled by Vela: its ethos-u ops run only on an Ethos-U NPU",
                                 "time the .tflite it was compiled from (the same name without _vela)") from None
            raise BenchError(f"{path} is not a loadable TFLite model ({reason})", "re-export the .tflite file") from None
        _check_single_input(path, [item["name"] for item in self.interpreter.get_input_details()])
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.batch_dynamic = int(self._input["shape_signature"][0]) == -1
        self._batch = int(self._input["shape"][0])
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])

    def set_input(self, x: np.ndarray) -> None:
        if len(x) != self._batch:
            if not self.batch_dynamic:
                raise BenchError(f"this model's batch is fixed to {self._batch}", "feed one sample at a time")
            self.interpreter.resize_tensor_input(self._input["index"], [len(x), *self._input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._input["index"], quantize_input(x, self._input))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        return dequantize_output(self.interpreter.get_tensor(self._output["index"]), self._output)


class OnnxRuntimeRunner:
    """ONNX Runtime CPU provider with the same thread setting as LiteRT."""

    def __init__(self, path: Path, threads: int = 1, fuse_qdq: bool = True) -> None:
        """`fuse_qdq=False` keeps Q/DQ nodes unfused: exact integer math in float kernels."""
        ort = runtime(".onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if not fuse_qdq:  # the QDQ fusions into integer kernels start at the EXTENDED level
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        _check_single_input(path, [item.name for item in inputs])
        model_input = inputs[0]
        if model_input.type != "tensor(float)":
            raise BenchError(f"{Path(path).name}'s input {model_input.name} is a {model_input.type}",
                             "the method feeds float32 samples: export the model with a float input")
        sizes = list(model_input.shape)
        if len(sizes) < 2 or not all(isinstance(size, int) for size in sizes[1:]):
            raise BenchError(f"{Path(path).name}'s input {model_input.name} is shaped {sizes}: the method needs "
                             "a batch dimension first and fixed sizes after it",
                             "fix the sizes when exporting (or with python -m onnxruntime.tools.make_dynamic_shape_fixed)")
        self._input_name = model_input.name
        self._output_name = self.session.get_outputs()[0].name
        self.batch_dynamic = not isinstance(sizes[0], int)
        self.input_shape = tuple(sizes[1:])
        self._feed: dict[str, np.ndarray] = {}
        self._result: np.ndarray | None = None

    def set_input(self, x: np.ndarray) -> None:
        self._feed = {self._input_name: np.ascontiguousarray(x, dtype=np.float32)}

    def invoke(self) -> None:
        self._result = self.session.run([self._output_name], self._feed)[0]

    def output(self) -> np.ndarray:
        assert self._result is not None, "invoke() before output()"
        return self._result


def _check_single_input(path: Path, names: list[str]) -> None:
    """The method feeds one tensor of samples; a model that needs more cannot be timed by it."""
    if len(names) != 1:
        raise BenchError(f"{Path(path).name} has {len(names)} inputs ({', '.join(names)}); the method times "
                         "models with one input", "export the model with a single input tensor")


def runtime_suffix(path: Path) -> str:
    """".onnx" or ".tflite": which runtime runs `path`. ONNX files by extension, anything else is
    TFLite (the host's runtime registry sniffs contents; a device only gets files it recognised)."""
    return ".onnx" if Path(path).suffix.lower() == ".onnx" else ".tflite"


def open_runner(path: Path, threads: int = 1, delegate: str | None = None) -> Runner:
    """A runner for a .tflite or .onnx file, with the given LiteRT delegate if any."""
    if runtime_suffix(path) == ".onnx":
        if delegate:
            raise BenchError(f"a delegate ({delegate}) was asked for an ONNX file", "drop the delegate")
        return OnnxRuntimeRunner(path, threads)
    return LiteRTRunner(path, threads, delegate)


def predict(runner: Runner, x: np.ndarray) -> np.ndarray:
    """Scores for every sample: in chunks where the batch is dynamic, one by one otherwise."""
    step = EVAL_CHUNK if runner.batch_dynamic else 1
    outputs = []
    for start in range(0, len(x), step):
        runner.set_input(x[start : start + step])
        runner.invoke()
        outputs.append(runner.output())
    return np.concatenate(outputs)


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input → the model's input dtype using its scale/zero-point (identity for float)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)
