"""The Ray executor on a real two-node Ray cluster started here on 127.0.0.1: the same records
as a local run, a cache both executors resume, a killed worker, and a device node's timings."""
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

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray's own switch for a loopback-only cluster
ray = pytest.importorskip("ray", reason="the ray extra is installed by .ci/run")

from toolkit.config import Experiment, Variant  # noqa: E402
from toolkit.pipeline import run  # noqa: E402
from toolkit.records import load_results  # noqa: E402
from toolkit.targets import targets_dir  # noqa: E402

pytestmark = pytest.mark.slow
DEVICE_RESOURCE = "device:test-board"
# One TensorFlow thread everywhere (train_threads): the same thread count gives the same bytes.
SETTINGS = dict(model="mlp", epochs=2, finetune_epochs=1, bench_runs=20, precisions=("fp32", "int8"),
                variants=(Variant(("prune:0.5",)), Variant(("qat",))), targets=("cpu", "onnx-cpu"), train_threads=1)
CLI_SETTINGS = ["--model", "mlp", "--epochs", "2", "--finetune-epochs", "1", "--bench-runs", "20", "--precisions",
                "fp32,int8", "--variant", "prune:0.5", "--variant", "qat", "--targets", "cpu,onnx-cpu", "--train-threads", "1"]


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node that advertises a device resource, both on loopback."""
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                          "include_dashboard": False})
    nodes.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={DEVICE_RESOURCE: 1})
    yield nodes
    nodes.shutdown()


def _cli_run(output: Path, *extra: str) -> tuple[Path, str]:
    """`edgesmith run` in its own process (its thread settings apply from the start); (run folder, stderr)."""
    result = subprocess.run([sys.executable, "-m", "toolkit", "run", *CLI_SETTINGS, "--output", str(output), *extra],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return output / "digits-mlp", result.stderr


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    run_dir, _ = _cli_run(tmp_path_factory.mktemp("local"))
    return run_dir, _by_path(run_dir)


def _by_path(run_dir: Path) -> dict[str, dict]:
    return {record["path"]: dict(record) for record in load_results(run_dir)[0]}


def _ray_run(cluster, output: Path) -> tuple[Path, str]:
    return _cli_run(output, "--executor", "ray", "--ray-address", cluster.address)


def _stages(run_dir: Path) -> dict[str, int]:
    return json.loads((run_dir / "run.json").read_text())["stages"]


def test_ray_run_gives_the_local_records_and_both_resume_each_other(cluster, local_records, tmp_path):
    local_dir, local = local_records
    ray_dir, log = _ray_run(cluster, tmp_path)
    remote = _by_path(ray_dir)
    assert sorted(remote) == sorted(local)
    for path, record in remote.items():
        assert (record["sha256"], record["size_bytes"], record["accuracy"]) == \
            (local[path]["sha256"], local[path]["size_bytes"], local[path]["accuracy"]), path
    assert "[ray] building 3 variant(s) as Ray tasks" in log and "[build] prune50: built on node " in log

    _cli_run(tmp_path)  # local, on the Ray run's folder
    assert _stages(ray_dir)["built"] == 0
    _, again = _ray_run(cluster, local_dir.parent)  # Ray, on the local run's folder
    assert _stages(local_dir)["built"] == 0
    assert "building" not in again


def _build_title(variant_id: str = "") -> bytes:
    """Ray titles a process running a build task `ray::build:<id>` (of `variant_id`, or any)."""
    return f"ray::build:{variant_id}".encode()


def _kill_builds(my_processes, variant_id: str, stop: threading.Event, limit: int) -> list[int]:
    """SIGKILL the worker process running `variant_id`'s build task, up to `limit` times."""
    killed: list[int] = []

    def watch() -> None:
        while not stop.is_set() and len(killed) < limit:
            for pid in my_processes(_build_title(variant_id)):
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return killed


def test_a_worker_killed_mid_build_is_retried(cluster, local_records, tmp_path, my_processes):
    _, local = local_records
    stop = threading.Event()
    killed = _kill_builds(my_processes, "prune50", stop, limit=1)
    ray_dir, _ = _ray_run(cluster, tmp_path)
    stop.set()
    assert len(killed) == 1
    remote = _by_path(ray_dir)
    assert remote["cpu/prune50__int8.tflite"]["sha256"] == local["cpu/prune50__int8.tflite"]["sha256"]


def test_a_variant_lost_after_every_retry_is_reported_and_built_by_the_next_run(cluster, tmp_path, my_processes):
    from toolkit.scale.ray_build import BUILD_RETRIES

    stop = threading.Event()
    killed = _kill_builds(my_processes, "prune50", stop, limit=BUILD_RETRIES + 1)
    ray_dir, _ = _ray_run(cluster, tmp_path)
    stop.set()
    assert len(killed) == BUILD_RETRIES + 1
    skipped = json.loads((ray_dir / "run.json").read_text())["skipped"]
    assert [item["variant"] for item in skipped] == ["prune50"]
    assert "Ray task was lost" in skipped[0]["reason"]
    assert {record["variant"] for record in _by_path(ray_dir).values()} == {"baseline", "qat"}

    _ray_run(cluster, tmp_path)
    assert "prune50" in {record["variant"] for record in _by_path(ray_dir).values()}
    assert _stages(ray_dir)["reused"] > 0


def test_a_target_with_a_ray_resource_is_timed_on_the_node_that_advertises_it(cluster, tmp_path):
    profiles = _board_profile(tmp_path)
    experiment = Experiment(**{**SETTINGS, "variants": (), "targets": ("board", "cpu")}, targets_dir=str(profiles),
                            executor="ray", ray_address=cluster.address, output=str(tmp_path))
    ray_dir = run(experiment, log=lambda line: None)
    device_node = next(node["NodeID"] for node in _cluster_nodes(cluster) if DEVICE_RESOURCE in node["Resources"])
    for record in _by_path(ray_dir).values():
        if record["target"] == "board":
            assert f"{device_node[:12]}, resource {DEVICE_RESOURCE}" in record["latency_measured_on"]
            assert record["latency_ms"]["p50"] > 0 and record["device_host"]
            assert record["latency_ms"]["stopped_by"] in ("width", "budget"), "the adaptive plan runs on the node too"
        else:
            assert "via Ray" not in record["latency_measured_on"] and record["device_host"] is None


def _board_profile(tmp_path: Path) -> Path:
    """A copy of the cpu profile, named "board", timed on the node with DEVICE_RESOURCE."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (targets_dir() / "cpu.toml").read_text().replace('name = "cpu"', 'name = "board"')
    (profiles / "board.toml").write_text(text.replace("latency_on_device = true",
                                                      f'latency_on_device = true\nray_resource = "{DEVICE_RESOURCE}"'))
    return profiles


def _cluster_nodes(cluster) -> list[dict]:
    ray.init(address=cluster.address)
    try:
        return [node for node in ray.nodes() if node["Alive"]]
    finally:
        ray.shutdown()


def test_a_ray_resource_without_the_ray_executor_is_refused(tmp_path):
    from toolkit.devices import connect_devices
    from toolkit.errors import EdgesmithError
    from toolkit.targets import load_target

    profiles = _board_profile(tmp_path)
    with pytest.raises(EdgesmithError, match="this run does not use Ray"):
        connect_devices([load_target("board", profiles)], ())


def test_a_search_on_ray_builds_its_trials_as_ray_tasks(cluster, tmp_path):
    pytest.importorskip("optuna", reason="the search extra is installed by .ci/run")
    from toolkit.search.space import parse_space
    from toolkit.search.study import search

    lines: list[str] = []
    experiment = Experiment(**{**SETTINGS, "targets": ("cpu",), "variants": ()}, executor="ray",
                            ray_address=cluster.address, output=str(tmp_path))
    space = parse_space({"prune": [0.3, 0.8], "precision": ["fp32", "int8"]})
    _, document = search(experiment, space, trials=3, log=lines.append)
    complete = [trial for trial in document["trials"] if trial["state"] == "COMPLETE"]
    assert len(complete) == 3
    assert any(line.startswith("[ray] building") for line in lines)
    assert document["front"]


def test_a_build_task_no_node_can_hold_is_refused_before_training(cluster, tmp_path):
    from toolkit.errors import EdgesmithError

    experiment = Experiment(**SETTINGS, executor="ray", ray_address=cluster.address, ray_num_gpus=1, output=str(tmp_path))
    with pytest.raises(EdgesmithError, match="no node of the Ray cluster has 1 CPUs and 1 GPUs"):
        run(experiment, log=lambda line: None)
    assert not any(tmp_path.iterdir())


def test_ctrl_c_during_the_build_phase_cancels_the_tasks_and_the_same_command_finishes(cluster, tmp_path, my_processes):
    command = [sys.executable, "-m", "toolkit", "run", *CLI_SETTINGS, "--output", str(tmp_path),
               "--executor", "ray", "--ray-address", cluster.address]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stderr:
        if "building 3 variant(s) as Ray tasks" in line:
            break
    deadline = time.monotonic() + 60
    while not my_processes(_build_title()) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    deadline = time.monotonic() + 30
    while my_processes(_build_title()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert my_processes(_build_title()) == [], "build tasks kept running after Ctrl-C"
    assert not (tmp_path / "digits-mlp" / "results.json").exists()

    run_dir, _ = _cli_run(tmp_path)
    assert {record["variant"] for record in _by_path(run_dir).values()} == {"baseline", "prune50", "qat"}
