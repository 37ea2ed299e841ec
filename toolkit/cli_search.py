"""`edgesmith search`: a multi-objective search of compression chains for one target (Optuna),
progress on stderr, the measured Pareto front (or search.json with --json) on stdout."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from toolkit.cli_options import add_json, positive_int, print_result
from toolkit.scale import EXECUTORS


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `search` to the command parser."""
    search = commands.add_parser(
        "search", help="search compression chains for the accuracy/latency (or size) front of one target",
        parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sample chains (distill, prune, cluster, qat) and precisions from the experiment's [search] table, "
                    "measure each on one target with the run's cached stages, and report the measured Pareto front. "
                    "Needs the search extra: pip install \"edgesmith[search]\".",
        epilog="\n".join([
            "[search] table keys (all optional, at least one of the first five):",
            "  prune = [0.3, 0.9]          sparsity range (steps of 0.05; the step may be left out)",
            "  cluster = [8, 16, 32]       clusters per kernel",
            "  distill_width = [0.25, 1]   student width range (steps of 0.05)",
            "  qat = [true, false]         quantization-aware training (then the export is int8)",
            '  precision = ["fp16", "int8"]',
            '  objectives = ["accuracy", "latency"] (default) or ["accuracy", "size"]',
            "",
            "examples:",
            "  edgesmith search experiment.toml --trials 30",
            "  edgesmith search experiment.toml --trials 60 --target edgetpu --storage postgresql://user@db/edgesmith",
        ]),
    )
    search.add_argument("experiment", type=Path, help="TOML experiment file with a [search] table")
    search.add_argument("--trials", type=positive_int, required=True,
                        help="complete trials wanted (those already in the study count)")
    search.add_argument("--timeout", type=float, default=None, metavar="S", help="stop asking new trials after S seconds")
    search.add_argument("--target", default=None, help="the target to search for (required with several targets)")
    search.add_argument("--storage", default=None, metavar="URL",
                        help="database URL of the study, shared by several machines (default: sqlite in the run folder)")
    search.add_argument("--executor", choices=EXECUTORS, default=None, help="override the experiment's executor (ray: trials build in parallel)")
    search.add_argument("--ray-address", default=None, metavar="HOST:PORT", help="the Ray cluster to join (with --executor ray)")
    add_json(search, "search.json (every trial and the front)")
    search.set_defaults(handler=_search)


def _search(args: argparse.Namespace) -> int:
    from toolkit.search import require_optuna
    from toolkit.search.space import load_search
    from toolkit.search.study import search
    from toolkit.search.summary import front_text

    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial is logged by the search itself
    experiment, space = load_search(args.experiment)
    overrides = {key: value for key, value in (("executor", args.executor), ("ray_address", args.ray_address)) if value}
    experiment = dataclasses.replace(experiment, **overrides)
    run_dir, document = search(experiment, space, args.trials, target=args.target, storage=args.storage,
                               timeout=args.timeout, log=logging.getLogger("toolkit.run").info)
    print_result(args.json, document, lambda: f"{front_text(document)}\n\nrun folder {run_dir} (search.json, report.md)")
    return 0
