"""`edgesmith explain`: which layers lose accuracy in int8, and what keeping them float costs."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from toolkit.cli_options import add_json, add_targets_dir, budget, positive_int, print_result
from toolkit.cli_run import HELP as RUN_HELP


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `explain` to the command parser."""
    explain = commands.add_parser(
        "explain", help="why did int8 lose accuracy? per-layer error and float fallback", parents=[common],
        description="Rank a model's quantized layers by the error each adds in int8 (SQNR, RMS error in "
                    "quantization steps, share of the total) and measure keeping the worst in float.",
        epilog="examples:\n  edgesmith explain model.h5 --dataset fashion-mnist\n"
               "  edgesmith explain runs/digits-cnn --target onnx-cpu --fallback auto:2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("model", type=Path, help="a Keras model file (.keras, .h5, SavedModel folder) or a finished run folder")
    explain.add_argument("--target", default="cpu", help="an int8 target: cpu (TFLite, default), onnx-cpu (ONNX) or any profile")
    explain.add_argument("--dataset", help=RUN_HELP["dataset"] + "; a run folder's own by default")
    explain.add_argument("--data", default="", help=RUN_HELP["data"])
    explain.add_argument("--preprocess", default="", help=RUN_HELP["preprocess"])
    explain.add_argument("--image-size", default="", metavar="WxH", help=RUN_HELP["image_size"])
    explain.add_argument("--color", default="", choices=["rgb", "grayscale"], help=RUN_HELP["color"])
    explain.add_argument("--seed", type=int, default=0, help="split and calibration seed (default 0; a run folder's own)")
    explain.add_argument("--top", type=positive_int, default=10, help="rows of the table (default 10)")
    explain.add_argument("--samples", type=positive_int, default=200, help="test samples the per-layer error is measured on (default 200)")
    explain.add_argument("--fallback", metavar="auto[:N]|LAYERS",
                         help="keep layers float: auto (worst first until the drop is within budget, at most 3), "
                              "auto:N, or comma-separated layer names")
    explain.add_argument("--max-accuracy-drop", type=budget, default=1.0, help="the fallback's budget in pp (default 1.0)")
    explain.add_argument("--output", type=Path, metavar="DIR",
                         help="where the measured files go (default RUN/explain/TARGET or MODEL-explain/TARGET)")
    explain.add_argument("--allow-unsafe", action="store_true", help=RUN_HELP["allow_unsafe"])
    add_targets_dir(explain)
    add_json(explain, "the ranked layers, fallback steps and findings")
    explain.set_defaults(handler=_explain)


def _explain(args: argparse.Namespace) -> int:
    from toolkit.quant_debug import explain_model, parse_fallback
    from toolkit.quant_debug.analysis import check_request
    from toolkit.quant_debug.inputs import resolve
    from toolkit.targets import load_target

    target = load_target(args.target, args.targets_dir)
    plan = parse_fallback(args.fallback) if args.fallback else None
    check_request(target, plan)
    named = None if args.dataset is None else {"dataset": args.dataset, "data": args.data, "preprocess": args.preprocess,
                                               "image_size": args.image_size, "color": args.color, "seed": args.seed}
    subject = resolve(args.model, dataset=named, allow_unsafe=args.allow_unsafe, seed=args.seed,
                      log=logging.getLogger("toolkit.explain").info)
    folder = args.output or subject.default_output / target.name
    result = explain_model(subject.model, target, subject.data, folder, plan, args.max_accuracy_drop, args.samples,
                           subject.calibration_samples, subject.seed)
    print_result(args.json, result.to_dict(), lambda: result.format_text(args.top))
    return 0
