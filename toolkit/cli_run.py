"""`edgesmith run`: options generated from the Experiment dataclass, progress on stderr, the
results table (or JSON) on stdout.

Generating the options from the dataclass makes every option a key of the TOML experiment
file too, so the two can never drift apart.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from toolkit.cli_options import TARGETS_DIR_HELP, add_json, comma_list, print_result
from toolkit.config import DATASETS, LIST_FIELDS, PRECISIONS, Experiment, from_dict, load_experiment

STEP_SEPARATOR = "+"
HELP = {
    "name": "run folder name (default: DATASET-MODEL)",
    "dataset": "digits (embedded, default), fashion-mnist, mnist, npz or folder (images, one sub-folder per class)",
    "data": "folder with IDX files, the .npz file, or the image folder",
    "model": "zoo model (mlp, cnn, dscnn, mobilenet_v2:alpha=0.35, mobilenet_v3_small, resnet8) or a Keras 2/3 model file (.keras, .h5, SavedModel folder)",
    "precisions": "comma-separated precisions for the full model: fp32,fp16,dynamic,int8",
    "targets": "comma-separated target profiles (see `edgesmith targets`)",
    "targets_dir": TARGETS_DIR_HELP,
    "variants": "a compression chain, steps joined by '+', e.g. 'prune:0.8+qat' (repeatable; replaces the defaults)",
    "force": "rebuild every stage instead of reusing cached ones",
    "no_wait": "if another run is using the run folder, stop with an error instead of waiting for it",
    "max_accuracy_drop": "budget for best/: accuracy drop in percentage points (default 1.0)",
    "max_mae_increase": "regression: budget for best/, MAE increase in percent of the full model's (default 5)",
    "task": "classification (default) or regression (float targets in an npz, or an image folder's targets.csv; scored by MAE and RMSE)",
    "max_latency_ms": "budget for best/: p50 latency in ms (0 = no limit)",
    "max_size_kb": "budget for best/: file size in KB (0 = no limit)",
    "allow_unsafe": "allow loading model files that contain code (Lambda layers)",
    "devices": "time a target on a device: TARGET=ssh://user@host[:port] (repeatable; overrides the profile's device)",
    "device_accuracy": "also run the test split on each device and report agreement with this machine's outputs",
    "preprocess": "raw → model input: scale:1/255, none, mobilenet, mean_std:M,S or mean_std:M1,M2,M3/S1,S2,S3 (default: the dataset's)",
    "image_size": "image folders: WIDTHxHEIGHT every image is resized to (default: the model file's input size, else the first image's size)",
    "color": "image folders: rgb or grayscale (default: the model file's input channels, else rgb)",
    "train_threads": "TensorFlow threads for training and conversion (default 0: every core; a Ray task: ray_num_cpus); the same count gives the same bytes",
    "executor": "local (default); processes: build variants in a pool of local processes, then time them alone; "
                "ray: build variants as Ray tasks (pip install \"edgesmith[ray]\")",
    "build_workers": "executor processes: how many build processes (default 0: one per core)",
    "ray_address": "the Ray cluster to join, HOST:PORT (default: start a local instance sized to this machine)",
    "ray_num_cpus": "CPUs each variant's build task reserves on Ray (default 1)",
    "ray_num_gpus": "GPUs each variant's build task reserves on Ray (default 0)",
    "float_fallback": "also export int8-mixed: the int8 file with its worst layers kept float, auto (grow until "
                      "the drop is within max_accuracy_drop, at most 3), auto:N, or layer names "
                      "(targets that run float layers: cpu, onnx-cpu)",
    "bench_target_width": "adaptive benchmarking: add sessions until p50's repeat interval is within ±this share of it (default 0.02; 0: the fixed plan of bench_runs calls)",
    "bench_budget_s": "adaptive benchmarking: seconds per artifact after which no session is added (default 0.5)",
    "skip_bad_images": "image folders: skip and count unreadable images instead of stopping",
}
# What `run --help` shows for the step syntax; a test parses every one of them.
STEP_EXAMPLES = (
    ("prune:0.8", "magnitude pruning to 80% zeros"),
    ("prune:2:4", "2:4 structured pruning (2 or more zeros in every 4 input-channel weights)"),
    ("cluster:16", "16 shared weight values per kernel"),
    ("qat", "quantization-aware training (int8 exports only)"),
    ("distill:width=0.5", "a half-width student learns the full model's soft labels"),
    ("distill:params=0.25", "… a student with a quarter of the full model's parameters"),
    ("distill:student=mlp,alpha=0.1", "… with another zoo model; also temperature=4"),
)
CHAIN_EXAMPLES = ("prune:0.8+qat", "distill:width=0.5+prune:0.5+qat")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `run` to the command parser."""
    run = commands.add_parser(
        "run", help="train/load, compress, convert, check and benchmark", parents=[common],
        description="Train or load the full model, make every variant, export it per target, check and benchmark it.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("experiment", nargs="?", type=Path, help="optional TOML experiment file (options given here override it)")
    _add_experiment_options(run)
    add_json(run, "the result records, the full model's figures and the best pick per target", "; the table goes to stderr")
    run.set_defaults(handler=_run)


def _epilog() -> str:
    """Choices and the pass syntax, read from the registries so a new pass or target shows up."""
    from toolkit.models import ZOO_NAMES
    from toolkit.passes import PASSES
    from toolkit.targets import ENV_DIRS, target_names

    width = max(len(text) for text, _ in STEP_EXAMPLES) + 2
    examples = [f"  {text:<{width}}{meaning}" for text, meaning in STEP_EXAMPLES]
    return "\n".join([
        "choices:",
        f"  datasets    {', '.join(DATASETS)}",
        f"  models      {', '.join(ZOO_NAMES)}, or a model file",
        f"  targets     {', '.join(target_names())} (add your own with --targets-dir DIR or ${ENV_DIRS})",
        f"  precisions  {', '.join(PRECISIONS)}",
        "",
        f"passes: {', '.join(PASSES)}; a step is PASS[:ARGS], a chain joins steps with '{STEP_SEPARATOR}':",
        *examples,
        "",
        "examples:",
        "  edgesmith run",
        *[f"  edgesmith run --variant '{chain}' --targets cpu,edgetpu" for chain in CHAIN_EXAMPLES],
        "  edgesmith run --variant cluster:16 --variant prune:2:4 --precisions fp32,int8 --json > results.json",
        "  edgesmith run experiment.toml --epochs 5",
    ])


def _add_experiment_options(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(Experiment):
        flag = "--" + field.name.replace("_", "-")
        help_text = HELP.get(field.name, f"default: {field.default!r}")
        if field.name == "devices":
            parser.add_argument("--device", dest="devices", action="append", default=argparse.SUPPRESS, metavar="TARGET=URL",
                                help=HELP["devices"])
        elif field.name == "variants":
            parser.add_argument("--variant", dest="variants", action="append", default=argparse.SUPPRESS, help=HELP["variants"])
            parser.add_argument("--no-variants", dest="variants", action="store_const", const=[], default=argparse.SUPPRESS,
                                help="benchmark the full model only")
        elif isinstance(field.default, bool):
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        elif field.name in LIST_FIELDS:
            parser.add_argument(flag, type=comma_list, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, type=type(field.default), default=argparse.SUPPRESS, help=help_text)


def _experiment(args: argparse.Namespace) -> Experiment:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Experiment) if hasattr(args, f.name)}
    if "variants" in overrides:
        overrides["variants"] = [[step.strip() for step in chain.split(STEP_SEPARATOR)] for chain in overrides["variants"]]
    if args.experiment is not None:
        return load_experiment(args.experiment, overrides)
    return from_dict(overrides, source="command line")


def _run(args: argparse.Namespace) -> int:
    from toolkit.cli_log import artifact_progress
    from toolkit.outputs import summary_text
    from toolkit.pipeline import run
    from toolkit.records import load_results

    experiment = _experiment(args)
    logging.getLogger("toolkit.cli").debug("experiment: %s", json.dumps(experiment.to_dict()))
    with artifact_progress() as progress:
        run_dir = run(experiment, log=logging.getLogger("toolkit.run").info, progress=progress)
    records, info = load_results(run_dir)
    summary = summary_text(run_dir, records, info)
    if args.json:
        logging.getLogger("toolkit.run").info(summary)
    print_result(args.json, {"run_dir": str(run_dir), "baseline": info["baseline"], "best": info["best"], "records": records},
                 lambda: summary)
    return 0
