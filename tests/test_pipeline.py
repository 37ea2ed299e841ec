"""End to end: `edgesmith run` on a tiny experiment, then a cached re-run."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

REQUIRED_KEYS = {
    "variant", "target", "format", "precision", "path", "size_bytes", "gzip_bytes", "accuracy",
    "accuracy_drop_pp", "agreement", "latency_ms", "threads",
}
TINY = [
    "--epochs", "3", "--finetune-epochs", "1", "--bench-runs", "30", "--calibration-samples", "32",
]


def edgesmith(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    result = edgesmith("run", *TINY, "--name", "tiny", "--variant", "prune:0.5,qat", "--output", str(folder), cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "tiny", result


@pytest.mark.slow
def test_run_writes_every_output(finished_run):
    run_dir, result = finished_run
    for name in ("results.json", "results.csv", "report.md", "report.html", "run.json", "manifest.json"):
        assert (run_dir / name).is_file(), name
    records = json.loads((run_dir / "results.json").read_text())
    assert records and all(REQUIRED_KEYS <= set(record) for record in records)
    for record in records:
        assert (run_dir / record["path"]).is_file()
        assert set(record["latency_ms"]) >= {"p50", "p90", "p99"}
    targets = {record["target"] for record in records}
    assert targets == {"cpu", "gpu", "edgetpu", "onnx-cpu"}
    cpu_baseline = {r["precision"] for r in records if r["variant"] == "baseline" and r["target"] == "cpu"}
    assert cpu_baseline == {"fp32", "fp16", "dynamic", "int8"}
    qat = [r for r in records if r["variant"] == "prune50+qat"]
    assert qat and {r["precision"] for r in qat} == {"int8"}
    info = json.loads((run_dir / "run.json").read_text())
    assert 0.5 < info["baseline"]["accuracy"] <= 1.0
    assert "baseline" in result.stdout and "p50 ms" in result.stdout


@pytest.mark.slow
def test_int8_is_small_and_accurate(finished_run):
    run_dir, _ = finished_run
    records = json.loads((run_dir / "results.json").read_text())
    cpu = {r["precision"]: r for r in records if r["variant"] == "baseline" and r["target"] == "cpu"}
    assert cpu["int8"]["size_bytes"] <= 0.3 * cpu["fp32"]["size_bytes"]
    assert cpu["int8"]["accuracy_drop_pp"] <= 2.0
    assert cpu["fp32"]["agreement"] == 1.0


@pytest.mark.slow
def test_rerun_reuses_every_stage(finished_run):
    run_dir, _ = finished_run
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.tflite")}
    result = edgesmith("run", *TINY, "--name", "tiny", "--variant", "prune:0.5,qat", "--output", str(run_dir.parent), cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built 0" in result.stdout
    assert before == {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.tflite")}
