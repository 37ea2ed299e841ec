"""The TensorFlow Lite Micro interpreter (package `tflite-micro`): run an MCU artifact on the
host with TFLM's own reference kernels and read the arena its recording allocator used.

TFLM is C++ that reports through printf-style logging straight to the process's file
descriptors (stderr in current builds; older ones wrote to stdout), not through Python, so its
messages are read by pointing fds 1 and 2 at a temporary file for the duration of a call.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from toolkit.benchmark.device_runners import dequantize_output, quantize_input
from toolkit.errors import EdgesmithError
from toolkit.top1 import top1

PACKAGE = "tflite-micro"
MIN_ARENA = 64 << 10  # the interpreter's arena on the host: generous, its real use is recorded
OP_SAMPLES = 100  # samples whose every intermediate tensor is compared with LiteRT's
_ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_REASON = re.compile(r"(Didn't find op for \S+ opcode '[^']+'|Failed to get registration[^\n]*|"
                     r"Arena size is too small[^\n]*|[^\n]*not supported[^\n]*)")


def available() -> bool:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def native_output() -> Iterator[Callable[[], str]]:
    """Capture what C/C++ code writes to fds 1 and 2 inside the block; call the yielded
    function after the block for the text."""
    text = ""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: text
        finally:
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace")


def interpreter(model: bytes, arena_size: int, name: str = "model", keep_tensors: bool = False) -> Any:
    """A TFLM interpreter for `model`, or one EdgesmithError with TFLM's own reason.
    `keep_tensors`: every tensor stays readable after invoke (no arena recording then)."""
    from tflite_micro.python.tflite_micro import runtime

    config = runtime.InterpreterConfig.kPreserveAllTensors if keep_tensors else runtime.InterpreterConfig.kAllocationRecording
    with native_output() as output:
        try:
            return runtime.Interpreter.from_bytes(model, arena_size=arena_size, intrepreter_config=config)
        except (RuntimeError, ValueError) as error:
            failure = str(error)
    reasons = _REASON.findall(output())
    raise EdgesmithError(f"TFLite Micro cannot load {name}: {reasons[0] if reasons else failure}",
                         "check it with `edgesmith check FILE --target TARGET` (your microcontroller's profile)")


def arena_size_for(path: Path) -> int:
    """Room for the interpreter on the host: twice the static plan, at least MIN_ARENA."""
    from toolkit.checks.arena import plan_file

    return max(MIN_ARENA, 2 * plan_file(path).arena_bytes)


class TFLMRunner:
    """The Runner protocol over the TFLM interpreter: batch 1, float in, float out."""

    batch_dynamic = False

    def __init__(self, path: Path, threads: int = 1) -> None:
        path = Path(path)
        self.interpreter = interpreter(path.read_bytes(), arena_size_for(path), path.name)
        self._input = _detail(self.interpreter.get_input_details(0))
        self._output = _detail(self.interpreter.get_output_details(0))
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])

    def set_input(self, x: np.ndarray) -> None:
        if len(x) != 1:
            raise EdgesmithError("TFLite Micro runs one sample at a time", "feed batches of 1")
        self.interpreter.set_input(quantize_input(x, self._input).reshape(self._input["shape"]), 0)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        return dequantize_output(np.asarray(self.interpreter.get_output(0)), self._output)

    @property
    def output_scale(self) -> float:
        """One quantization step of the output (1.0 for a float output)."""
        scale = self._output["quantization"][0]
        return float(scale) if scale else 1.0


def recorded_arena(runner: TFLMRunner) -> dict[str, int]:
    """What TFLM's recording allocator reports for this interpreter: total, head (the planned
    activations and scratch) and tail (persistent bookkeeping), in bytes."""
    with native_output() as output:
        runner.interpreter.print_allocations()
    found = {kind: int(value) for kind, value in _ALLOCATION.findall(output())}
    if set(found) != {"total", "head", "tail"}:
        raise EdgesmithError("TFLite Micro printed no arena allocation summary",
                             f"check that the installed {PACKAGE} has the recording allocator")
    return found


def _detail(details: dict[str, Any]) -> dict[str, Any]:
    """TFLM's tensor details in the form the shared (de)quantizers read."""
    quantization = details.get("quantization_parameters") or {}
    scales, zero_points = quantization.get("scales"), quantization.get("zero_points")
    scale = float(scales[0]) if scales is not None and len(scales) else 0.0
    zero_point = int(zero_points[0]) if zero_points is not None and len(zero_points) else 0
    return {"dtype": np.dtype(details["dtype"]).type, "shape": tuple(int(d) for d in details["shape"]),
            "quantization": (scale, zero_point)}


def interpreter_facts(path: Path, x: np.ndarray) -> dict[str, Any]:
    """What running the file in TFLM shows: the arena its recording allocator used, and how its
    outputs compare with LiteRT's on the same file, in quantization steps. Against LiteRT's
    reference kernels (the integer math TFLM's kernels are written from) every op's output is
    compared too: one op may round one step differently, and the model output then differs by
    what those steps add up to. Against LiteRT's default kernels with XNNPACK (what the cpu
    target runs), only the model output."""
    from toolkit.benchmark.runners import LiteRTRunner, predict

    if not available():
        return {"notes": (f"{PACKAGE} is not installed: accuracy is LiteRT's and no arena was recorded",)}
    try:
        runner = TFLMRunner(path)
    except EdgesmithError as error:
        return {"notes": (f"{error.problem}: accuracy is LiteRT's and no arena was recorded",)}
    micro = predict(runner, x)
    arena = recorded_arena(runner)

    def versus(lite: np.ndarray) -> dict[str, float]:
        return {"top1_agreement": float((top1(micro) == top1(lite)).mean()),
                "max_abs_diff_steps": round(float(np.abs(micro - lite).max()) / runner.output_scale, 3)}

    reference = versus(predict(LiteRTRunner(path, reference_kernels=True), x))
    try:
        op_steps, notes = max_op_difference(path, x[:OP_SAMPLES]), ()
    except EdgesmithError as error:  # a diagnostic: the file itself loaded and ran above
        op_steps, notes = None, (f"per-op comparison not run: {error.problem}",)
    return {
        "arena_bytes": arena["total"],
        "arena_recorded": {"head_bytes": arena["head"], "tail_bytes": arena["tail"],
                           "by": f"TFLM RecordingMicroAllocator ({PACKAGE}, this host's {8 * ctypes.sizeof(ctypes.c_void_p)}-bit build)"},
        "int8_crosscheck": {
            "against": "LiteRT, same file", "samples": len(x),
            "reference_kernels": {**reference, "max_op_diff_steps": op_steps,
                                  "op_samples": min(len(x), OP_SAMPLES)},
            "default_kernels": versus(predict(LiteRTRunner(path), x)),
        },
        **({"notes": notes} if notes else {}),
    }


def max_op_difference(path: Path, x: np.ndarray) -> int:
    """Largest difference, in quantization steps, between any op's int8 output in TFLM and in
    LiteRT's reference kernels, over the samples `x`."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from toolkit.checks.flatbuffer import read_tflite

    outputs = [index for op in read_tflite(path).ops for index in op.outputs]
    micro = _interpreter_keeping_tensors(Path(path))
    lite = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                       experimental_preserve_all_tensors=True)
    lite.allocate_tensors()
    detail = lite.get_input_details()[0]
    worst = 0
    for sample in x:
        quantized = quantize_input(sample[None], detail).reshape(detail["shape"])
        micro.set_input(quantized, 0)
        micro.invoke()
        lite.set_tensor(detail["index"], quantized)
        lite.invoke()
        for index in outputs:
            ours = np.asarray(micro.GetTensor(index, 0)["tensor_data"], dtype=np.int64)
            theirs = lite.get_tensor(index).astype(np.int64)
            worst = max(worst, int(np.abs(ours.reshape(theirs.shape) - theirs).max()))
    return worst


def _interpreter_keeping_tensors(path: Path, growths: int = 4) -> Any:
    """A TFLM interpreter that keeps every tensor: its arena holds all of them at once, which
    the static plan (tensors sharing memory) does not size, so it grows until they fit."""
    size = arena_size_for(path)
    for growth in range(growths + 1):
        try:
            return interpreter(path.read_bytes(), size << growth, path.name, keep_tensors=True)
        except EdgesmithError:
            if growth == growths:
                raise
