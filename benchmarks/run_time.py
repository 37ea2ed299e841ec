"""Where does a run's time go, and what does adaptive benchmarking save? Runs each experiment
into a fresh folder once with the fixed plan (`--bench-target-width 0`: bench_runs calls over 10
sessions per figure, as before) and once with the adaptive plan (the defaults), and prints wall
time, run.json's `phase_seconds` and what each chain's last step took to train (`build_seconds`;
a shared prefix such as prune:0.8 counts in the build phase, not in the list), the sessions the
adaptive plan took, and whether any figure moved: accuracy and size must be identical, and each
pair of p50s must not differ measurably (their repeat intervals overlap: the rule `select` uses).
`--control` runs the fixed plan a second time, to show how far p50s move between two runs of the
same plan on this machine.
Goals: default run ≤ 45 s, the Fashion-MNIST experiment ≤ 7 min (2 cores).

    python benchmarks/run_time.py                 # both experiments, both plans (about 30 minutes)
    python benchmarks/run_time.py --only default  # the default run only (a few minutes)
    python benchmarks/run_time.py --only default --control
    python benchmarks/run_time.py --only fashion --plans adaptive   # one plan: wall time and phases only
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, load_run  # noqa: E402

from toolkit.selection import compare_p50  # noqa: E402

EXPERIMENTS = {  # name → (extra `edgesmith run` arguments, goal in seconds)
    "default": ([], 45.0),
    "fashion": ([str(Path(__file__).parent / "fashion_cnn.toml")], 7 * 60.0),
}
PLANS = {"fixed": ["--bench-target-width", "0"], "adaptive": [], "fixed again": ["--bench-target-width", "0"]}


def timed_run(arguments: list[str], output: Path) -> tuple[float, list[dict], dict]:
    """Wall time of one `edgesmith run` into `output`, and its results and run.json."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "toolkit", "run", *arguments, "--output", str(output), "-q"],
                               capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"edgesmith run {' '.join(arguments)} failed:\n{completed.stderr[-2000:]}")
    (run_dir,) = [path.parent for path in output.glob("*/run.json")]
    records, info = load_run(run_dir)
    return wall, records, info


def describe_plan(name: str, wall: float, records: list[dict], info: dict) -> str:
    phases = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in info["phase_seconds"].items())
    latencies = [r["latency_ms"] for r in records if r["latency_ms"] and r.get("latency_kind") == "measured"]
    distinct = {r["sha256"]: r["latency_ms"] for r in records if r["latency_ms"] and r.get("latency_kind") == "measured"}
    sessions = [latency["sessions"] for latency in distinct.values()]
    stops = Counter(latency["stopped_by"] for latency in distinct.values())
    widths = [max(l["p50"] - l["repeat95_p50"][0], l["repeat95_p50"][1] - l["p50"]) / l["p50"] * 100 for l in latencies]
    trained = ", ".join(f"{variant} {details['build_seconds']:g} s" for variant, details in info.get("variants", {}).items()
                        if details.get("build_seconds") is not None)
    return (f"  {name:<11} {wall:6.1f} s wall ({phases}{'; last step of each chain: ' + trained if trained else ''}); "
            f"{len(distinct)} distinct files timed, sessions per file "
            f"median {median(sessions):g} (min {min(sessions)}, max {max(sessions)}), stopped by "
            f"{', '.join(f'{reason} {count}' for reason, count in sorted(stops.items()))}; repeat95_p50 half-width "
            f"median ±{median(widths):.1f}%")


def compare(before: list[dict], after: list[dict]) -> str:
    """Accuracy and size equal; p50s of the same artifact not measurably different."""
    old = {r["path"]: r for r in before}
    same_quality = sum(old[r["path"]]["accuracy"] == r["accuracy"] and old[r["path"]]["size_bytes"] == r["size_bytes"]
                       for r in after if r["path"] in old)
    timed = [(old[r["path"]], r) for r in after if r["path"] in old and r["latency_ms"] and old[r["path"]]["latency_ms"]
             and r.get("latency_kind") == "measured"]
    overlapping = sum(compare_p50(a["latency_ms"], b["latency_ms"]) == 0 for a, b in timed)
    moved = [f"{b['path']} {a['latency_ms']['p50']:.4f} → {b['latency_ms']['p50']:.4f} ms" for a, b in timed
             if compare_p50(a["latency_ms"], b["latency_ms"]) != 0]
    return (f" accuracy and size identical: {same_quality} of {len(after)} artifacts; p50 within each other's repeat "
            f"interval: {overlapping} of {len(timed)}" + "".join(f"\n    moved: {line}" for line in moved))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(EXPERIMENTS), help="one experiment instead of both")
    parser.add_argument("--control", action="store_true", help="also repeat the fixed plan (run-to-run drift)")
    parser.add_argument("--plans", default="fixed,adaptive", help="comma-separated: fixed, adaptive (default both)")
    args = parser.parse_args()
    plans = [plan.strip() for plan in args.plans.split(",")] + (["fixed again"] if args.control else [])
    if not set(plans) <= set(PLANS) or args.control and "fixed" not in plans:
        parser.error("--plans takes fixed and/or adaptive; --control needs fixed")
    for name in [args.only] if args.only else list(EXPERIMENTS):
        arguments, seconds = EXPERIMENTS[name]
        print(f"{name} experiment (`edgesmith run {' '.join(Path(a).name for a in arguments)}`):", flush=True)
        results = {}
        for plan in plans:
            with tempfile.TemporaryDirectory(prefix=f"edgesmith-{name}-{plan.replace(' ', '-')}-") as output:
                results[plan] = timed_run(arguments + PLANS[plan], Path(output))
            print(describe_plan(plan, *results[plan]), flush=True)
        if {"fixed", "adaptive"} <= set(results):
            print("  fixed → adaptive:" + compare(results["fixed"][1], results["adaptive"][1]))
            print(f"  adaptive / fixed wall time {results['adaptive'][0] / results['fixed'][0]:.2f}")
        if args.control:
            print("  fixed → fixed again (control):" + compare(results["fixed"][1], results["fixed again"][1]))
        if "adaptive" in results:
            print(f"  adaptive run: goal ≤ {seconds:.0f} s: {goal(results['adaptive'][0] <= seconds)}")


if __name__ == "__main__":
    main()
