"""Peak memory of loading and running an artifact, measured in a fresh process.

Inside the pipeline's own process TensorFlow already holds hundreds of MB, which would drown
a model's footprint; a clean child process that imports only the runtime gives an honest
"what does this model add" figure (peak RSS after running minus RSS before loading).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from toolkit.errors import EdgesmithError

RUNS = 20


def peak_memory_mb(path: Path, threads: int = 1) -> dict[str, float]:
    """{'baseline_rss_mb', 'peak_rss_mb', 'model_mb'} for loading `path` and running it."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "toolkit.benchmark.memory", str(path), str(threads)],
            capture_output=True, text=True, timeout=300,
        )
    except subprocess.TimeoutExpired:
        raise EdgesmithError(f"measuring the memory of {path} took over 300 s", "check the model runs at all") from None
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgesmithError(f"memory probe failed for {path}: {last}", "run `edgesmith bench` on it with --debug")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _probe(path: Path, threads: int) -> dict[str, float]:
    from toolkit.runtimes import runtime_for_file

    runtime = runtime_for_file(path)
    runtime.preload()  # import cost is not the model's
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak: imports are not the model's
    before = _status_kb("VmRSS")
    runner = runtime.open_runner(path, threads, validate=False)
    shape = runner.input_shape
    runner.set_input(np.random.default_rng(0).random((1, *shape), dtype=np.float32))
    for _ in range(RUNS):
        runner.invoke()
    peak = _status_kb("VmHWM")
    return {"baseline_rss_mb": before / 1024, "peak_rss_mb": peak / 1024, "model_mb": (peak - before) / 1024}


if __name__ == "__main__":
    print(json.dumps(_probe(Path(sys.argv[1]), int(sys.argv[2]))))
