"""`edgesmith` command line: run, check, bench, report, select, targets, device probe.

`run` options are generated from the Experiment dataclass, so every option is also a key of
the TOML experiment file and the two can never drift apart.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from toolkit.config import LIST_FIELDS, Experiment, from_dict, load_experiment
from toolkit.errors import EdgesmithError

STEP_SEPARATOR = "+"
REQUIRED_RECORD_KEYS = {"variant", "target", "path", "accuracy", "accuracy_drop_pp", "latency_ms", "size_bytes", "gzip_bytes"}
HELP = {
    "name": "run folder name (default: DATASET-MODEL)",
    "dataset": "digits (embedded, default), fashion-mnist, mnist, npz or folder (images, one sub-folder per class)",
    "data": "folder with IDX files, the .npz file, or the image folder",
    "preprocess": "raw → model input: scale:1/255, none, mobilenet, mean_std:M,S or mean_std:M1,M2,M3/S1,S2,S3 (default: the dataset's)",
    "image_size": "image folders: WIDTHxHEIGHT every image is resized to (default: the first image's size)",
    "color": "image folders: rgb (default) or grayscale",
    "skip_bad_images": "image folders: skip and count unreadable images instead of stopping",
    "model": "zoo model (mlp, cnn, dscnn, mobilenet_v2:alpha=0.35, mobilenet_v3_small, resnet8) or a Keras 2/3 model file (.keras, .h5, SavedModel folder)",
    "precisions": "comma-separated precisions for the full model: fp32,fp16,dynamic,int8",
    "targets": "comma-separated target profiles (see `edgesmith targets`)",
    "variants": "a compression chain, steps joined by '+', e.g. 'prune:0.8+qat' (repeatable; replaces the defaults)",
    "force": "rebuild every stage instead of reusing cached ones",
    "max_accuracy_drop": "budget for best/: accuracy drop in percentage points (default 1.0)",
    "max_latency_ms": "budget for best/: p50 latency in ms (0 = no limit)",
    "max_size_kb": "budget for best/: file size in KB (0 = no limit)",
    "allow_unsafe": "allow loading model files that contain code (Lambda layers)",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.handler(args)
    except EdgesmithError as error:
        if getattr(args, "debug", False):
            raise
        print(f"edgesmith: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgesmith: interrupted — finished stages are kept; run the same command to resume", file=sys.stderr)
        return 130


def _silence_native_logs() -> None:
    """TensorFlow's C++ layers (absl, oneDNN, CUDA probing, the MLIR quantizer) write straight
    to file descriptor 2, bypassing Python. Point that descriptor at /dev/null and keep Python's
    own stderr — our messages and errors — on the original terminal. `--debug` shows it all."""
    try:
        original = os.dup(2)
    except OSError:
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(original, "w", buffering=1, encoding="utf-8", errors="replace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks and library logs")
    parser = argparse.ArgumentParser(
        prog="edgesmith", parents=[common], description="Compress, convert, check and benchmark Keras models for edge targets."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = lambda name, text: commands.add_parser(name, help=text, parents=[common])  # noqa: E731

    run = add("run", "train/load, compress, convert, check and benchmark")
    run.add_argument("experiment", nargs="?", type=Path, help="optional TOML experiment file")
    _add_experiment_options(run)
    run.set_defaults(handler=_run)

    check = add("check", "will this model file run on a target?")
    check.add_argument("model", type=Path)
    check.add_argument("--target", required=True)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(handler=_check)

    bench = add("bench", "benchmark one .tflite or .onnx file with the run's method")
    bench.add_argument("model", type=Path)
    bench.add_argument("--runs", type=_positive_int, default=300)
    bench.add_argument("--threads", type=_positive_int, default=1)
    bench.add_argument("--batch", type=_positive_int, default=32, help="batch for the throughput figure")
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.set_defaults(handler=_bench)

    report = add("report", "rebuild a run's reports from its results.json")
    report.add_argument("run_dir", type=Path)
    report.set_defaults(handler=_report)

    select = add("select", "pick the best variant of a finished run for a target and budget")
    select.add_argument("run_dir", type=Path)
    select.add_argument("--target", required=True)
    select.add_argument("--max-accuracy-drop", type=_budget, required=True, metavar="PP", help="percentage points")
    select.add_argument("--max-latency-ms", type=_budget, default=0.0, help="0 = no limit")
    select.add_argument("--max-size-kb", type=_budget, default=0.0, help="0 = no limit")
    select.set_defaults(handler=_select)

    targets = add("targets", "list target profiles")
    targets.set_defaults(handler=_targets)

    device = add("device", "what a device is and what it can run")
    device_commands = device.add_subparsers(dest="device_command", required=True)
    probe = device_commands.add_parser("probe", help="CPU model and int8 features, OS, Python, runtimes", parents=[common])
    probe.add_argument("--json", action="store_true", help="machine-readable output")
    probe.set_defaults(handler=_probe)
    return parser


def _add_experiment_options(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(Experiment):
        flag = "--" + field.name.replace("_", "-")
        help_text = HELP.get(field.name, f"default: {field.default!r}")
        if field.name == "variants":
            parser.add_argument("--variant", dest="variants", action="append", default=argparse.SUPPRESS, help=HELP["variants"])
            parser.add_argument("--no-variants", dest="variants", action="store_const", const=[], default=argparse.SUPPRESS, help="benchmark the full model only")
        elif isinstance(field.default, bool):
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        elif field.name in LIST_FIELDS:
            parser.add_argument(flag, type=_comma_list, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, type=type(field.default), default=argparse.SUPPRESS, help=help_text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _budget(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} is negative; use 0 for no limit")
    return value


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _experiment(args: argparse.Namespace) -> Experiment:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Experiment) if hasattr(args, f.name)}
    if "variants" in overrides:
        overrides["variants"] = [[step.strip() for step in chain.split(STEP_SEPARATOR)] for chain in overrides["variants"]]
    if args.experiment is not None:
        return load_experiment(args.experiment, overrides)
    return from_dict(overrides, source="command line")


def _run(args: argparse.Namespace) -> int:
    from toolkit.pipeline import run

    run(_experiment(args))
    return 0


def _check(args: argparse.Namespace) -> int:
    from toolkit.check import check_artifact
    from toolkit.targets import load_target

    if not args.model.exists():
        raise EdgesmithError(f"model file {args.model} does not exist", "check the path")
    report = check_artifact(args.model, load_target(args.target))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return 0 if report.compatible else 1


def _bench(args: argparse.Namespace) -> int:
    import numpy as np

    from toolkit.bench.harness import benchmark_file
    from toolkit.bench.runners import open_runner

    runner = open_runner(args.model, args.threads)
    sample = np.random.default_rng(0).random((args.batch, *runner.input_shape), dtype=np.float32)
    result = benchmark_file(args.model, sample, args.runs, args.threads, args.batch)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    latency = result["latency_ms"]
    print(f"{args.model}: batch 1, {args.threads} thread(s), {latency['runs']} runs after {latency['warmup_runs']} warm-up")
    print(f"  CPU: {result['latency_cpu']}")
    print(f"  p50 {latency['p50']:.4f} ms (95% CI {latency['ci95_p50'][0]:.4f}–{latency['ci95_p50'][1]:.4f})  "
          f"p90 {latency['p90']:.4f}  p99 {latency['p99']:.4f}  mean {latency['mean']:.4f} ± {latency['std']:.4f}")
    if result["latency_ms_all_cores"]:
        cores = result["latency_ms_all_cores"]
        print(f"  all {cores['threads']} cores: p50 {cores['p50']:.4f} ms")
    if result["throughput"]:
        throughput = result["throughput"]
        print(f"  throughput at batch {throughput['batch']}: {throughput['samples_per_s']:.0f} samples/s")
    print(f"  memory added by loading and running: {result['peak_memory_mb']:.1f} MB")
    return 0


def _load_results(run_dir: Path) -> tuple[list, dict]:
    results, info = run_dir / "results.json", run_dir / "run.json"
    if not results.is_file() or not info.is_file():
        raise EdgesmithError(f"{run_dir} has no results.json/run.json", "pass the folder of a finished `edgesmith run`")
    try:
        records, run_info = json.loads(results.read_text()), json.loads(info.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgesmithError(f"{run_dir} has an unreadable results file ({exc})", "re-run `edgesmith run` to rebuild it") from None
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise EdgesmithError(f"{results} is not a list of result records", "re-run `edgesmith run` to rebuild it")
    missing = REQUIRED_RECORD_KEYS - set().union(*records) if records else set()
    if missing:
        raise EdgesmithError(f"{results} lacks {', '.join(sorted(missing))}", "re-run `edgesmith run` to rebuild it")
    return records, run_info


def _report(args: argparse.Namespace) -> int:
    from toolkit.outputs import write_reports

    records, info = _load_results(args.run_dir)
    try:
        write_reports(args.run_dir, records, info)
    except OSError as exc:
        raise EdgesmithError(f"cannot write the reports into {args.run_dir} ({exc.strerror})", "check the folder's permissions") from None
    print(f"rebuilt {args.run_dir / 'report.md'} and {args.run_dir / 'report.html'}")
    return 0


def _select(args: argparse.Namespace) -> int:
    from toolkit.select import select_best

    records, _ = _load_results(args.run_dir)
    selection = select_best(records, args.target, args.max_accuracy_drop, args.max_latency_ms or None, args.max_size_kb or None)
    print(selection.format_text())
    return 0 if selection.winner is not None else 1


def _targets(args: argparse.Namespace) -> int:
    from toolkit.targets import format_target_list, list_targets

    print(format_target_list(list_targets()))
    return 0


def _probe(args: argparse.Namespace) -> int:
    from toolkit.probe import format_probe, probe

    facts = probe()
    print(json.dumps(facts, indent=2) if args.json else format_probe(facts))
    return 0


def entry_point() -> None:
    """The installed command: like main(), plus TensorFlow's native log noise silenced."""
    if "--debug" not in sys.argv:
        _silence_native_logs()
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `edgesmith check m.tflite --target cpu | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)

