"""The process-pool executor: the same files as a local run, a cache both resume, and a build
process killed mid-build."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from toolkit.config import from_dict
from toolkit.errors import EdgesmithError
from toolkit.records import load_results

pytestmark = pytest.mark.slow
# One TensorFlow thread in every build (train_threads): the same thread count gives the same bytes.
SETTINGS = ["--model", "mlp", "--epochs", "2", "--finetune-epochs", "1", "--bench-runs", "20", "--precisions",
            "fp32,int8", "--variant", "prune:0.5", "--variant", "qat", "--targets", "cpu,onnx-cpu", "--train-threads", "1"]
POOL = ["--executor", "processes", "--build-workers", "2"]


def _cli_run(output: Path, *extra: str) -> tuple[Path, str]:
    result = subprocess.run([sys.executable, "-m", "toolkit", "run", *SETTINGS, "--output", str(output), *extra],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return output / "digits-mlp", result.stderr


def _by_path(run_dir: Path) -> dict[str, dict]:
    return {record["path"]: dict(record) for record in load_results(run_dir)[0]}


def _info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_pool_run_gives_the_local_files_and_resumes_a_local_runs_cache(tmp_path):
    local_dir, _ = _cli_run(tmp_path / "local")
    pool_dir, log = _cli_run(tmp_path / "pool", *POOL)
    local, pooled = _by_path(local_dir), _by_path(pool_dir)
    assert sorted(pooled) == sorted(local)
    for path, record in pooled.items():
        assert (record["sha256"], record["accuracy"]) == (local[path]["sha256"], local[path]["accuracy"]), path
    assert "[build] building 3 variant(s) in 2 process(es), 1 TensorFlow thread(s) each" in log
    assert "[build] prune50: built in a local process" in log
    _, again = _cli_run(tmp_path / "local", *POOL)  # the pool, on the local run's folder
    assert _info(local_dir)["stages"]["built"] == 0 and "building" not in again


def test_a_killed_build_process_skips_its_variants_and_the_next_run_builds_them(tmp_path, my_processes):
    killed: list[int] = []
    stop = threading.Event()

    def kill_first_worker() -> None:
        while not stop.is_set() and not killed:
            workers = my_processes(b"multiprocessing.spawn")  # the pool's workers
            if workers:
                time.sleep(3)  # let it start a task
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.05)

    threading.Thread(target=kill_first_worker, daemon=True).start()
    run_dir, _ = _cli_run(tmp_path, *POOL)
    stop.set()
    assert killed
    skipped = _info(run_dir)["skipped"]
    assert skipped and all("its build process died" in entry["reason"] for entry in skipped)
    _, log = _cli_run(tmp_path, *POOL)
    assert not _info(run_dir)["skipped"]
    assert sorted(entry["variant"] for entry in skipped) == sorted(
        line.split("] ")[1].split(":")[0] for line in log.splitlines() if "built in a local process" in line)


def test_negative_build_workers_is_refused():
    with pytest.raises(EdgesmithError, match="build_workers must not be negative"):
        from_dict({"build_workers": -1})
