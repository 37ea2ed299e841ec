"""End to end: `edgesmith run` on a tiny experiment, then a cached re-run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    result = edgesmith("run", *TINY, "--name", "tiny", "--variant", "prune:0.5+qat", "--output", str(folder), cwd=folder)
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
    result = edgesmith("run", *TINY, "--name", "tiny", "--variant", "prune:0.5+qat", "--output", str(run_dir.parent), cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built 0" in result.stdout
    assert before == {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.tflite")}


@pytest.mark.slow
def test_commands_on_a_finished_run(finished_run):
    run_dir, _ = finished_run
    records = json.loads((run_dir / "results.json").read_text())
    (run_dir / "report.html").unlink()
    rebuilt = edgesmith("report", str(run_dir), cwd=run_dir)
    assert rebuilt.returncode == 0 and (run_dir / "report.html").is_file()

    best = json.loads((run_dir / "run.json").read_text())["best"]
    assert best["cpu"] and (run_dir / "best" / "cpu" / Path(best["cpu"]).name).is_file()
    select = edgesmith("select", str(run_dir), "--target", "cpu", "--max-accuracy-drop", "5", cwd=run_dir)
    assert select.returncode == 0 and Path(best["cpu"]).name in select.stdout
    impossible = edgesmith("select", str(run_dir), "--target", "cpu", "--max-accuracy-drop", "5", "--max-size-kb", "0.001", cwd=run_dir)
    assert impossible.returncode == 1 and "KB" in impossible.stdout

    edgetpu = next(r for r in records if r["target"] == "edgetpu")
    check = edgesmith("check", str(run_dir / edgetpu["path"]), "--target", "edgetpu", "--json", cwd=run_dir)
    report = json.loads(check.stdout)
    assert report["target"] == "edgetpu" and report["compile"]["status"] == "skipped"
    assert "edgetpu_compiler" in report["compile"]["reason"]

    cpu_int8 = next(r for r in records if r["target"] == "cpu" and r["precision"] == "int8")
    bench = edgesmith("bench", str(run_dir / cpu_int8["path"]), "--runs", "50", "--json", cwd=run_dir)
    assert bench.returncode == 0, bench.stderr[-2000:]
    figures = json.loads(bench.stdout)
    assert figures["latency_ms"]["p50"] > 0 and figures["throughput"]["samples_per_s"] > 0
    assert figures["peak_memory_mb"] is not None
    from toolkit.cpu_features import cpu_features, describe

    assert figures["latency_cpu"] == describe(cpu_features())

    listing = edgesmith("targets", cwd=run_dir)
    assert all(name in listing.stdout for name in ("cpu", "gpu", "edgetpu", "onnx-cpu"))


@pytest.mark.slow
def test_json_output_and_log_levels_on_a_cached_rerun(finished_run):
    run_dir, _ = finished_run
    again = ("run", *TINY, "--name", "tiny", "--variant", "prune:0.5+qat", "--output", str(run_dir.parent))
    quiet = edgesmith(*again, "--json", "-q", cwd=run_dir.parent)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    answer = json.loads(quiet.stdout)
    assert set(answer) == {"run_dir", "baseline", "best", "records"}
    assert answer["records"] == json.loads((run_dir / "results.json").read_text())
    assert answer["best"] == json.loads((run_dir / "run.json").read_text())["best"]
    assert "[baseline]" not in quiet.stderr and "artifacts]" not in quiet.stderr, "-q silences progress"

    verbose = edgesmith(*again, "-v", cwd=run_dir.parent)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    planned = len(answer["records"])
    assert "[baseline] cached" in verbose.stderr and f"[{planned}/{planned} artifacts]" in verbose.stderr
    assert "debug: experiment:" in verbose.stderr and "debug:" not in verbose.stdout
    assert "p50 ms" in verbose.stdout and "[baseline]" not in verbose.stdout, "the table on stdout, progress on stderr"

    select = edgesmith("select", str(run_dir), "--target", "cpu", "--max-accuracy-drop", "5", "--json", cwd=run_dir)
    choice = json.loads(select.stdout)
    assert set(choice) == {"target", "budget", "winner", "rejected"} and choice["target"] == "cpu"
    assert choice["winner"]["path"] and all({"artifact", "reason"} <= set(item) for item in choice["rejected"])


@pytest.mark.slow
def test_manifest_and_record_details(finished_run):
    run_dir, _ = finished_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["libraries"]["tensorflow"].startswith("2.21")
    assert manifest["machine"]["cores"] >= 1 and manifest["dataset"]["fingerprint"]
    records = json.loads((run_dir / "results.json").read_text())
    assert set(manifest["artifacts"]) == {r["path"] for r in records}
    onnx_fp32 = next(r for r in records if r["format"] == "onnx" and r["precision"] == "fp32")
    assert onnx_fp32["fp32_max_abs_diff_vs_tflite"] <= 1e-4
    pruned = next(r for r in records if r["variant"] == "prune50+qat" and r["target"] == "cpu")
    assert pruned["sparsity"] >= 0.3, "pruning zeros must survive into the int8 TFLite file"
    assert all(r["macs"] for r in records if r["format"] == "tflite")


@pytest.mark.slow
def test_int8_onnx_is_exact_on_this_cpu_and_every_latency_names_the_cpu(finished_run):
    from toolkit.cpu_features import cpu_features, describe

    run_dir, result = finished_run
    features = cpu_features()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["machine"]["cpu_features"] == features
    assert json.loads((run_dir / "run.json").read_text())["cpu"] == features
    records = json.loads((run_dir / "results.json").read_text())
    assert {r["latency_cpu"] for r in records} == {describe(features)}
    assert f"host CPU: {describe(features)}" in result.stdout
    int8_onnx = [r for r in records if r["format"] == "onnx" and r["precision"] == "int8"]
    assert {r["variant"] for r in int8_onnx} == {"baseline", "prune50+qat"}  # ORT's PTQ and the QAT route
    for record in int8_onnx:  # onnx-cpu keeps weights in 7 bits: no saturation on any CPU (saturation
        # moves outputs by whole units; ORT's fixed-point requantization may round one step apart)
        assert record["int8_kernels"]["top1"] >= 0.99 and record["int8_kernels"]["max_abs_diff"] < 0.05, record
    assert all(r["int8_kernels"] is None for r in records if r not in int8_onnx)
    assert "fused int8 kernels" not in result.stdout


@pytest.mark.slow
def test_unsupported_layer_skips_only_that_variant(tmp_path):
    from toolkit._tf import keras

    k = keras()
    model = k.Sequential([
        k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Lambda(lambda x: x * 1.0, name="scale"),
        k.layers.Dense(10, activation="softmax"),
    ])
    model.save(tmp_path / "lambda.h5")
    result = edgesmith(
        "run", "--model", str(tmp_path / "lambda.h5"), "--allow-unsafe", "--variant", "qat", "--variant", "prune:0.5",
        "--targets", "cpu", "--precisions", "fp32", *TINY, "--output", str(tmp_path), "--name", "lam", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "qat was skipped" in result.stdout and "'scale'" in result.stdout
    variants = {r["variant"] for r in json.loads((tmp_path / "lam" / "results.json").read_text())}
    assert variants == {"baseline", "prune50"}
