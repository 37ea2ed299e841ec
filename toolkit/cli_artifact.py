"""`edgesmith check` and `edgesmith bench`: commands on one .tflite/.onnx file, ours or not."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.benchmark.isolated import survives_loading
from toolkit.cli_options import add_json, add_targets_dir, positive_int, print_result
from toolkit.errors import EdgesmithError, first_line

DEFAULT_RUNS = 300


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `check` and `bench` to the command parser."""
    check = commands.add_parser(
        "check", help="will this model file run on a target?", parents=[common],
        description="Read a TFLite or ONNX file and tell which ops run on the target's accelerator and which fall back.",
    )
    check.add_argument("model", type=Path, help="a .tflite or .onnx file (any, not only edgesmith's)")
    check.add_argument("--target", required=True, help="a target name (see `edgesmith targets`) or a profile's .toml path")
    add_targets_dir(check)
    add_json(check, "the compatibility report")
    check.set_defaults(handler=_check)

    bench = commands.add_parser(
        "bench", help="benchmark one .tflite or .onnx file with the run's method", parents=[common],
        description="Latency (batch 1, warmed-up fresh sessions), throughput and memory of one model file.",
    )
    bench.add_argument("model", type=Path, help="a .tflite or .onnx file")
    bench.add_argument("--runs", type=positive_int, default=DEFAULT_RUNS,
                       help=f"timed calls at batch 1, exactly this many, over up to 10 fresh sessions (default {DEFAULT_RUNS})")
    bench.add_argument("--threads", type=positive_int, default=1, help="threads for the batch-1 latency (default 1); all cores are timed too")
    bench.add_argument("--batch", type=positive_int, default=32, help="batch for the throughput figure where the batch is dynamic (default 32)")
    bench.add_argument("--input", type=Path, metavar="X.npy",
                       help="real inputs: a float32 array shaped (n, *input_shape) or input_shape, scaled as in training "
                            "(default: uniform random in [0, 1))")
    bench.add_argument("--device", metavar="URL", help="measure on this device instead: ssh://user@host[:port]")
    add_json(bench, "every figure")
    bench.set_defaults(handler=_bench)


def _check(args: argparse.Namespace) -> int:
    from toolkit.checks import check_artifact
    from toolkit.targets import load_target

    if not args.model.exists():
        raise EdgesmithError(f"model file {args.model} does not exist", "check the path")
    survives_loading(args.model)
    report = check_artifact(args.model, load_target(args.target, args.targets_dir))
    print_result(args.json, report.to_dict(), report.format_text)
    return 0 if report.compatible else 1


def _bench(args: argparse.Namespace) -> int:
    from toolkit.benchmark.runners import open_runner
    from toolkit.devices import bench_file

    survives_loading(args.model)
    runner = open_runner(args.model, args.threads)
    if args.input is None:
        sample = np.random.default_rng(0).random((args.batch, *runner.input_shape), dtype=np.float32)
    else:
        sample = load_inputs(args.input, runner.input_shape)
    result = bench_file(args.model, sample, args.runs, args.threads, args.batch, args.device, budget_s=None)
    result["input"] = str(args.input) if args.input else "random"
    print_result(args.json, result, lambda: _bench_text(args.model, result))
    return 0


def load_inputs(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Samples to time from an .npy file: shaped (n, *input_shape), or one sample (*input_shape)."""
    dims = ", ".join(str(d) for d in input_shape)
    expected = f"(n, {dims}) or ({dims})"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EdgesmithError(f"cannot read {path} as a .npy array ({first_line(exc)})", "save the inputs with numpy.save") from None
    if not isinstance(array, np.ndarray):
        raise EdgesmithError(f"{path} is an .npz archive, not one array", "save one array with numpy.save")
    if array.shape == input_shape:
        array = array[np.newaxis]
    if array.shape[1:] != input_shape or len(array) == 0:
        raise EdgesmithError(f"{path} holds an array of shape {array.shape}; the model expects {expected}",
                             "save samples shaped like the model's input")
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise EdgesmithError(f"{path} must hold finite float values (got {array.dtype})",
                             "save float32 inputs scaled as in training")
    return array.astype(np.float32)


def _bench_text(model: Path, result: dict) -> str:
    latency = result["latency_ms"]
    lines = [
        f"{model}: batch 1, {result['threads']} thread(s), {latency['runs']} runs after {latency['warmup_runs']} warm-up, "
        f"{result['input']} input",
        f"  on: {result['latency_measured_on']}",
        f"  CPU: {result['latency_cpu']}",
        f"  p50 {latency['p50']:.4f} ms (95% CI {latency['ci95_p50'][0]:.4f}–{latency['ci95_p50'][1]:.4f})  "
        f"p90 {latency['p90']:.4f}  p99 {latency['p99']:.4f}  mean {latency['mean']:.4f} ± {latency['std']:.4f}",
    ]
    if result["latency_ms_all_cores"]:
        cores = result["latency_ms_all_cores"]
        lines.append(f"  all {cores['threads']} cores: p50 {cores['p50']:.4f} ms")
    if result["throughput"]:
        throughput = result["throughput"]
        lines.append(f"  throughput at batch {throughput['batch']}: {throughput['samples_per_s']:.0f} samples/s")
    lines.append(f"  memory added by loading and running: {result['peak_memory_mb']:.1f} MB")
    return "\n".join(lines)
