"""The benchmark that runs where the model will run: runners, the timing method, memory.

Self-contained on purpose: numpy, the runtimes (ai-edge-litert, onnxruntime) and its sibling
`timing.py` (the statistics), nothing else. `toolkit.devices.ssh` copies the two files to a
Raspberry Pi or a Jetson and runs this one there, and the local harness imports the very same
code, so a latency measured on a device and one measured here come from one method.

    python3 device_bench.py MODEL [--inputs X.npy] [--runs N] [--threads T] [--batch B]
                                  [--delegate gpu|edgetpu] --json
    python3 device_bench.py MODEL --inputs X.npy --predict --json    # scores of every sample
"""
from __future__ import annotations

import argparse
import base64
import ctypes
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

if __package__:  # imported as part of edgesmith
    from toolkit.benchmark.timing import Latency, summarize, time_calls, warm_up
else:  # run as a script, here or on a device, next to timing.py
    from timing import Latency, summarize, time_calls, warm_up

DEFAULT_BUDGET_S = 5.0
SESSIONS = 10  # freshly loaded model copies per measurement (see timing.summarize)
FIRST_WARMUP_S = 0.2  # lets an idle CPU reach its working clock before anything is timed
EVAL_CHUNK = 256
MEMORY_RUNS = 20
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


def _runtime(suffix: str) -> Any:
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
    interpreter = _runtime(".tflite")
    try:
        ctypes.CDLL(library)  # first, as LiteRT's loader leaves a half-built object that warns on exit
        return interpreter.load_delegate(library)
    except (OSError, ValueError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BenchError(f"{name} not available: {library} does not load ({reason})",
                         f"install {library} and its driver on the device, or time this target on the host") from None


class LiteRTRunner:
    """LiteRT interpreter (XNNPACK on by default, or the given delegate), as shipped on Android and Linux."""

    def __init__(self, path: Path, threads: int = 1, delegate: str | None = None) -> None:
        interpreter = _runtime(".tflite")
        delegates = [load_delegate(delegate)] if delegate else None
        if delegate == "edgetpu" and b"edgetpu-custom-op" not in Path(path).read_bytes():
            raise BenchError(f"{Path(path).name} is not compiled for the Edge TPU (it has no edgetpu-custom-op)",
                             "compile it with edgetpu_compiler; as it is, every op would run on the CPU")
        try:
            self.interpreter = interpreter.Interpreter(model_path=str(path), num_threads=threads,
                                                       experimental_delegates=delegates)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise BenchError(f"{path} is not a loadable TFLite model ({reason})", "re-export the .tflite file") from None
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
        self.interpreter.set_tensor(self._input["index"], _quantize(x, self._input))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output(self) -> np.ndarray:
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


class OnnxRuntimeRunner:
    """ONNX Runtime CPU provider with the same thread setting as LiteRT."""

    def __init__(self, path: Path, threads: int = 1, fuse_qdq: bool = True) -> None:
        """`fuse_qdq=False` keeps Q/DQ nodes unfused: exact integer math in float kernels."""
        ort = _runtime(".onnx")
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


@dataclass(frozen=True)
class BenchSettings:
    """How latency is measured; stored next to every figure so it can be reproduced."""

    runs: int = 300
    threads: int = 1
    batch: int = 1
    budget_s: float | None = DEFAULT_BUDGET_S  # None: time every run however long it takes

    def to_dict(self) -> dict:
        return {"runs": self.runs, "threads": self.threads, "batch": self.batch, "budget_s": self.budget_s}


def all_cores() -> int:
    """Cores this process may use (respects CPU affinity, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def session_runs(runs: int) -> list[int]:
    """How `runs` timed calls split over sessions: SESSIONS of them (fewer when `runs` is
    smaller, one call each at least), the remainder one extra call each in the first ones."""
    sessions = min(SESSIONS, runs)
    return [runs // sessions + (index < runs % sessions) for index in range(sessions)]


def measure_latency(path: Path, sample: np.ndarray, settings: BenchSettings, delegate: str | None = None) -> Latency:
    """Time `settings.runs` invokes of one prepared input of `settings.batch`, spread over up to
    SESSIONS freshly loaded copies of the model, each warmed up until its timings settle.

    With a `budget_s`, a session of a slow model stops early once it is spent (after
    20 calls at least), so the run count can fall short; without one it is exact.
    """
    batch = np.repeat(sample[:1], settings.batch, axis=0) if len(sample) < settings.batch else sample[: settings.batch]
    counts = session_runs(settings.runs)
    session_budget = None if settings.budget_s is None else settings.budget_s / len(counts)
    sessions, warmup_runs = [], 0
    for session, count in enumerate(counts):
        runner = open_runner(path, settings.threads, delegate)
        runner.set_input(batch)
        warmup_runs += warm_up(runner.invoke, FIRST_WARMUP_S if session == 0 else 0.0)
        sessions.append(time_calls(runner.invoke, count, session_budget))
    return summarize(sessions, warmup_runs)


def benchmark_file(path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                   delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S) -> dict:
    """The full method for one artifact: latency at batch 1 on `threads` and on all cores,
    throughput at `batch` (when the batch dimension is dynamic) and peak memory.

    Every figure carries the settings it was measured with, so rows stay comparable.
    `budget_s=None` times exactly `runs` calls per latency figure however slow the model.
    """
    single = BenchSettings(runs=runs, threads=threads, batch=1, budget_s=budget_s)
    latency = measure_latency(path, sample, single, delegate)
    result = {
        "latency_ms": latency.to_dict(), "latency_method": single.to_dict(), "threads": threads, "batch": 1,
        "runs": latency.runs, "throughput": None, "latency_ms_all_cores": None,
        "peak_memory_mb": peak_memory_mb(path, threads, delegate)["model_mb"],
    }
    cores = all_cores()
    if cores != threads:
        many = BenchSettings(runs=runs, threads=cores, batch=1, budget_s=budget_s)
        result["latency_ms_all_cores"] = {**measure_latency(path, sample, many, delegate).to_dict(), "threads": cores}
    if batch > 1 and open_runner(path, 1, delegate).batch_dynamic:
        batched = BenchSettings(runs=max(20, runs // 10), threads=cores, batch=batch, budget_s=budget_s)
        timing = measure_latency(path, sample, batched, delegate)
        result["throughput"] = {"batch": batch, "threads": cores, "samples_per_s": batch / (timing.p50 / 1000),
                                "p50_ms": timing.p50}
    return result


def peak_memory_mb(path: Path, threads: int = 1, delegate: str | None = None) -> dict[str, float]:
    """{'baseline_rss_mb', 'peak_rss_mb', 'model_mb'} for loading `path` and running it.

    Measured in a fresh process that imports only the runtime: the caller may hold TensorFlow's
    hundreds of MB, which would drown a model's footprint (peak RSS after running minus RSS
    before loading)."""
    command = [sys.executable, str(Path(__file__).resolve()), str(path), "--memory", "--threads", str(threads), "--json"]
    try:
        completed = subprocess.run(command + (["--delegate", delegate] if delegate else []),
                                   capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BenchError(f"measuring the memory of {path} took over 300 s", "check the model runs at all") from None
    result = last_json(completed.stdout)
    if completed.returncode != 0 or "model_mb" not in result:
        last = result.get("error") or (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"memory probe failed for {path}: {last}", "run `edgesmith bench` on it with --debug")
    return result


def last_json(stdout: str) -> dict:
    """The JSON object this script printed last ({} when it printed none: it crashed)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _memory_here(path: Path, threads: int, delegate: str | None) -> dict[str, float]:
    """The child's side of peak_memory_mb: /proc's RSS high-water mark around loading and running."""
    _runtime(runtime_suffix(path))  # imports are not the model's
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    before = _status_kb("VmRSS")
    runner = open_runner(path, threads, delegate)
    runner.set_input(np.random.default_rng(0).random((1, *runner.input_shape), dtype=np.float32))
    for _ in range(MEMORY_RUNS):
        runner.invoke()
    peak = _status_kb("VmHWM")
    return {"baseline_rss_mb": before / 1024, "peak_rss_mb": peak / 1024, "model_mb": (peak - before) / 1024}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/self/status has no {field}", "measure memory on Linux")


def _run(args: argparse.Namespace) -> dict:
    if not args.model.is_file():
        raise BenchError(f"model file {args.model} does not exist", "check the path")
    if args.memory:
        return _memory_here(args.model, args.threads, args.delegate)
    x = None if args.inputs is None else np.load(args.inputs).astype(np.float32)
    if args.predict:
        if x is None:
            raise BenchError("--predict needs the samples", "pass --inputs X.npy")
        buffer = io.BytesIO()
        np.save(buffer, predict(open_runner(args.model, all_cores(), args.delegate), x))
        return {"scores_npy": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if x is None:
        shape = open_runner(args.model, 1, args.delegate).input_shape
        x = np.random.default_rng(0).random((args.batch, *shape), dtype=np.float32)
    budget_s = None if args.exact else DEFAULT_BUDGET_S
    return benchmark_file(args.model, x, args.runs, args.threads, args.batch, args.delegate, budget_s)


def main(argv: list[str] | None = None) -> int:
    """The script: one JSON object on stdout; a fixable problem is {"error", "fix"} and exit 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--inputs", type=Path, help=".npy samples shaped like the model input (default: random)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="batch for the throughput figure")
    parser.add_argument("--delegate", choices=sorted(DELEGATES), help="load this LiteRT delegate (or fail)")
    parser.add_argument("--exact", action="store_true", help="time exactly --runs calls, with no time budget")
    parser.add_argument("--predict", action="store_true", help="the scores of every --inputs sample, as base64 .npy")
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)  # peak_memory_mb's child
    parser.add_argument("--json", action="store_true", help="one line of JSON (default: indented)")
    args = parser.parse_args(argv)
    try:
        result, code = _run(args), 0
    except BenchError as exc:
        result, code = {"error": exc.problem, "fix": exc.fix}, 2
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
