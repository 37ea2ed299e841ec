"""Does `edgesmith search` find a better accuracy/latency front than hand-picked chains for the
same budget? Runs N search trials and N hand-picked grid artifacts (chain + precision) on digits
for the cpu target, and prints the 2-D hypervolume of each front (accuracy up, p50 latency down;
reference point: the worst accuracy and the worst latency of all points of both, less a 1% margin)
and their ratio (search / grid; > 1: the search's front covers more).

    python benchmarks/search_vs_grid.py --trials 8
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = """dataset = "digits"
model = "cnn"
epochs = 20
finetune_epochs = 1
bench_runs = 200
targets = ["cpu"]
max_accuracy_drop = 100.0  # no budget: both fronts are over every point
output = "{output}"
"""
SPACE = """
[search]
prune = [0.3, 0.9]
cluster = [8, 16, 32]
qat = [true, false]
precision = ["fp32", "fp16", "dynamic", "int8"]
"""
# What a person would try first, in the order they would try it: (chain, precision).
GRID = (
    ((), "fp32"), ((), "int8"), (("prune:0.5",), "int8"), (("prune:0.8",), "int8"), (("prune:0.8", "qat"), "int8"),
    (("qat",), "int8"), (("cluster:16",), "int8"), ((), "dynamic"), (("prune:0.5",), "fp16"), ((), "fp16"),
    (("prune:0.8", "cluster:16"), "int8"), (("cluster:8",), "dynamic"),
)
MARGIN = 0.01
# Both share one run folder: one trained full model, and a file both pick is timed once, so its
# latency is the same point on both fronts rather than two draws of the machine's noise.
RUN = "fronts"


def edgesmith(*args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"edgesmith {args[0]} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def search_points(folder: Path, trials: int) -> tuple[list[tuple[float, float]], float]:
    experiment = folder / "search.toml"
    experiment.write_text(f'name = "{RUN}"\n{SETTINGS.format(output=folder.as_posix())}{SPACE}')
    seconds = edgesmith("search", str(experiment), "--trials", str(trials))
    document = json.loads((folder / RUN / "search.json").read_text())
    return [(t["values"]["accuracy"], t["values"]["latency"]) for t in document["trials"] if t["state"] == "COMPLETE"], seconds


def grid_points(folder: Path, trials: int) -> tuple[list[tuple[float, float]], float]:
    picked = GRID[:trials]
    baseline = [precision for chain, precision in picked if not chain]
    chains: dict[tuple[str, ...], list[str]] = {}  # one variant per chain, with every precision picked for it
    for chain, precision in picked:
        if chain:
            chains.setdefault(chain, []).append(precision)
    variants = ", ".join(f"{{chain = {json.dumps(list(chain))}, precisions = {json.dumps(precisions)}}}"
                         for chain, precisions in chains.items())
    experiment = folder / "grid.toml"
    experiment.write_text(f'name = "{RUN}"\n{SETTINGS.format(output=folder.as_posix())}'
                          f"precisions = {json.dumps(baseline)}\nvariants = [{variants}]\n")
    seconds = edgesmith("run", str(experiment))
    records = json.loads((folder / RUN / "results.json").read_text())
    return [(r["accuracy"], r["latency_ms"]["p50"]) for r in records if (r["latency_ms"] or {}).get("p50") is not None], seconds


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated points, by increasing latency (and so increasing accuracy)."""
    kept, best = [], -1.0
    for accuracy, latency in sorted(points, key=lambda p: (p[1], -p[0])):
        if accuracy > best:
            kept.append((accuracy, latency))
            best = accuracy
    return kept


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by the front and bounded by the reference (worst accuracy, worst latency)."""
    area, previous = 0.0, reference[0]
    for accuracy, latency in front(points):
        area += (reference[1] - latency) * (accuracy - previous)
        previous = accuracy
    return area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help=f"budget N for each (grid: at most {len(GRID)})")
    args = parser.parse_args()
    if not 1 <= args.trials <= len(GRID):
        raise SystemExit(f"--trials must be from 1 to {len(GRID)} (the hand-picked grid's size)")
    with tempfile.TemporaryDirectory(prefix="edgesmith-search-") as folder:
        searched, search_s = search_points(Path(folder), args.trials)
        grid, grid_s = grid_points(Path(folder), args.trials)
    every = searched + grid
    accuracies, latencies = [p[0] for p in every], [p[1] for p in every]
    reference = (min(accuracies) - MARGIN * (max(accuracies) - min(accuracies)),
                 max(latencies) + MARGIN * (max(latencies) - min(latencies)))
    volumes = {"search": hypervolume(searched, reference), "grid": hypervolume(grid, reference)}
    for name, points, seconds in (("search", searched, search_s), ("grid", grid, grid_s)):
        shown = ", ".join(f"{a * 100:.2f}% @ {lat * 1000:.2f} µs" for a, lat in front(points))
        note = " (reusing the search's stages where it picked the same file)" if name == "grid" else ""
        print(f"{name}: {len(points)} points in {seconds:.0f} s{note}, front {shown}; hypervolume {volumes[name]:.3e}")
    print(f"reference point: accuracy {reference[0] * 100:.2f}%, p50 {reference[1] * 1000:.2f} µs; "
          f"hypervolume ratio search/grid {volumes['search'] / volumes['grid']:.2f}")


if __name__ == "__main__":
    main()
