"""Does a parallel executor shorten the build phase? Trains the full model once, then builds the
same variants (fine-tuning and every export) twice from that cached baseline: in one process
(executor "local") and in parallel with 2 workers: as Ray tasks on a local Ray instance
(`--executor ray`, the default) or in a local process pool (`--executor processes`). Prints both build
phases' wall time (run.json `phase_seconds.build`), their ratio (goal ≤ 0.7 on 2 cores), the
measured serial fraction (Karp–Flatt: e = (1/S − 1/p) / (1 − 1/p)) and, labelled as a
projection, what Amdahl's law gives for 8 and 32 nodes from it.

    python benchmarks/ray_speedup.py                      # Fashion-MNIST, benchmarks/fashion_cnn.toml
    python benchmarks/ray_speedup.py --model mlp --epochs 3   # a quicker look
    python benchmarks/ray_speedup.py --executor processes     # the local process pool, no Ray needed
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from toolkit.config import load_experiment
from toolkit.pipeline import run

EXPERIMENT = Path(__file__).with_name("fashion_cnn.toml")
WORKERS = 2


def build_seconds(experiment, output: Path) -> float:
    run_dir = run(experiment, log=lambda line: None)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["stages"]["built"] > 0 and not info["skipped"], "every variant must be built in this run"
    return info["phase_seconds"]["build"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="override the experiment's model (e.g. mlp for a quick look)")
    parser.add_argument("--epochs", type=int, help="override the experiment's baseline epochs")
    parser.add_argument("--executor", choices=("ray", "processes"), default="ray", help="the parallel executor to compare")
    args = parser.parse_args()
    overrides = {key: value for key, value in (("model", args.model), ("epochs", args.epochs)) if value}
    base = load_experiment(EXPERIMENT, {"bench_runs": 20, **overrides})
    with tempfile.TemporaryDirectory(prefix="edgesmith-ray-speedup-") as folder:
        root = Path(folder)
        trained = run(dataclasses.replace(base, variants=(), output=str(root / "baseline")), log=lambda line: None)
        for name in ("local", "parallel"):
            shutil.copytree(trained.parent, root / name)
        local = build_seconds(dataclasses.replace(base, output=str(root / "local")), root / "local")
        parallel = dataclasses.replace(base, output=str(root / "parallel"), executor=args.executor, build_workers=WORKERS)
        remote = build_seconds(parallel, root / "parallel")
    speedup = local / remote
    serial = (1 / speedup - 1 / WORKERS) / (1 - 1 / WORKERS)
    print(f"{base.dataset}, {base.model}, {len(base.variants)} variants (+ controls) × {len(base.targets)} targets")
    label = "Ray" if args.executor == "ray" else "a process pool"
    print(f"build phase: local {local:.1f} s, {label} with {WORKERS} workers {remote:.1f} s: ratio {remote / local:.2f} "
          f"(goal ≤ 0.70: {'met' if remote / local <= 0.70 else 'NOT met'})")
    print(f"measured serial fraction (Karp–Flatt, p = {WORKERS}): {serial:.2f}")
    for nodes in (8, 32):
        projected = 1 / (max(serial, 0.0) + (1 - max(serial, 0.0)) / nodes)
        print(f"projection (Amdahl, not measured): {nodes} nodes → {projected:.1f}× the local build phase's speed")


if __name__ == "__main__":
    main()
