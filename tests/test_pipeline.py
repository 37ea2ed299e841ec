"""End to end: `edgesmith run` on a tiny experiment, then a cached re-run."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from toolkit.data import load_dataset
from toolkit.targets import list_targets

REQUIRED_KEYS = {
    "variant", "target", "format", "precision", "path", "size_bytes", "gzip_bytes", "accuracy",
    "accuracy_drop_pp", "agreement", "latency_ms", "threads",
}
TINY = [
    "--epochs", "3", "--finetune-epochs", "1", "--bench-runs", "30", "--calibration-samples", "32",
]


def target_rows(listing: str) -> dict[str, list[str]]:
    """`edgesmith targets` as {name: [runtime, precisions]}: the rows of the table under its header."""
    lines = listing.splitlines()
    assert lines[0].split()[:3] == ["target", "runtime", "precisions"], lines[0]
    rows = {}
    for line in lines[1:]:
        if not line.strip():
            break
        name, runtime, precisions = line.split()[:3]
        assert name not in rows, f"{name} listed twice"
        rows[name] = [runtime, precisions]
    return rows


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
    seconds = info["variants"]["prune50+qat"]["build_seconds"]
    assert 0 < seconds < info["phase_seconds"]["build"], "what the chain's last step took, inside the build phase"
    assert f"[prune50+qat] qat took {seconds:g} s" in result.stderr


@pytest.mark.slow
def test_identical_exports_for_two_targets_are_one_file_on_disk(finished_run):
    """cpu and gpu export fp32 with the same settings: built once, the second a hard link."""
    run_dir, _ = finished_run
    cpu, gpu = run_dir / "cpu" / "baseline__fp32.tflite", run_dir / "gpu" / "baseline__fp32.tflite"
    assert cpu.read_bytes() == gpu.read_bytes() and cpu.stat().st_ino == gpu.stat().st_ino


@pytest.mark.slow
def test_the_run_times_its_files_together_and_identical_bytes_once(finished_run):
    """Every file timed on this machine gets its figure from one interleaved phase after the
    builds; cpu and gpu's identical fp32 bytes share one figure, and nothing is left untimed."""
    run_dir, result = finished_run
    records = json.loads((run_dir / "results.json").read_text())
    distinct = {record["sha256"] for record in records if record["latency_kind"] == "measured"}
    log = result.stderr
    assert f"[bench] timing {len(distinct)} files on this machine, their sessions interleaved" in log
    assert all(record["latency_ms"] and record["latency_ms"]["sessions"] >= 10 for record in records)
    by_path = {record["path"]: record for record in records}
    assert by_path["gpu/baseline__fp32.tflite"]["latency_ms"] == by_path["cpu/baseline__fp32.tflite"]["latency_ms"]
    assert by_path["gpu/baseline__fp32.tflite"]["latency_measured_on"] != by_path["cpu/baseline__fp32.tflite"]["latency_measured_on"]
    assert log.index("[bench] timing") > max(log.index(f"[export] {path}") for path in by_path if f"[export] {path}" in log)


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
    originals = {name: (run_dir / name).read_bytes() for name in ("report.md", "report.html")}
    for name in originals:
        (run_dir / name).unlink()
    rebuilt = edgesmith("report", str(run_dir), cwd=run_dir)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    for name, content in originals.items():
        assert (run_dir / name).read_bytes() == content, f"{name} rebuilt from results.json differs from the run's"
    assert f"rebuilt {run_dir / 'report.md'} and {run_dir / 'report.html'}" in rebuilt.stdout

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
    assert 0.5 < figures["peak_memory_mb"] < 2048, figures["peak_memory_mb"]
    from toolkit.cpu_features import cpu_features, describe

    assert figures["latency_cpu"] == describe(cpu_features())

    listing = edgesmith("targets", cwd=run_dir)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert target_rows(listing.stdout) == {
        t.name: [t.runtime, ",".join(t.precisions)] for t in list_targets()
    }
    assert {"cpu", "gpu", "edgetpu", "onnx-cpu"} <= set(target_rows(listing.stdout))


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
    for name, version in manifest["libraries"].items():
        try:
            assert version == metadata.version(name), name
        except metadata.PackageNotFoundError:
            assert version is None, name
    machine = manifest["machine"]
    assert machine["cores"] == os.cpu_count() and machine["usable_cores"] == len(os.sched_getaffinity(0))
    assert (machine["python"], machine["platform"]) == (platform.python_version(), platform.platform())
    data = load_dataset("digits", seed=0)
    assert manifest["dataset"]["fingerprint"] == data.fingerprint
    assert manifest["dataset"]["splits"] == {"train": len(data.x_train), "validation": len(data.x_val), "test": len(data.x_test)}
    config = manifest["config"]
    assert (config["name"], config["epochs"], config["finetune_epochs"], config["bench_runs"], config["calibration_samples"]) == (
        "tiny", 3, 1, 30, 32)
    assert [v["chain"] for v in config["variants"]] == [["prune:0.5", "qat"]]
    records = json.loads((run_dir / "results.json").read_text())
    assert set(manifest["artifacts"]) == {r["path"] for r in records}
    for path, digest in manifest["artifacts"].items():
        actual = hashlib.sha256((run_dir / path).read_bytes()).hexdigest()
        assert digest == actual, f"manifest hash of {path} is not the file's"
    assert all(r["sha256"] == manifest["artifacts"][r["path"]] for r in records)
    assert all(0.5 < r["peak_memory_mb"] < 2048 for r in records), [r["peak_memory_mb"] for r in records]
    by_bytes: dict[str, list[dict]] = {}
    for record in records:
        by_bytes.setdefault(record["sha256"], []).append(record)
    shared = [group for group in by_bytes.values() if len(group) > 1]
    assert shared, "cpu and gpu export the same bytes"
    for group in shared:  # timed, throughput and memory probe once per distinct file: every figure is the same one
        figures = [(r["latency_ms"], r["latency_ms_all_cores"], r["throughput"], r["peak_memory_mb"]) for r in group]
        assert all(figure == figures[0] for figure in figures), [r["path"] for r in group]
    timed = [r for r in records if r["latency_kind"] == "measured"]
    assert all(r["latency_method"]["target_width"] == 0.02 and r["latency_ms"]["stopped_by"] in ("width", "budget")
               and r["latency_ms"]["sessions"] >= 10 and r["latency_ms"]["runs"] == 3 * r["latency_ms"]["sessions"]
               for r in timed), "the adaptive plan (sessions of bench_runs / 10 calls) is the default"
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
        k.layers.Dense(12, activation="softmax"),  # two outputs more than the digits' classes: said, not refused
    ])
    model.save(tmp_path / "lambda.h5")
    result = edgesmith(
        "run", "--model", str(tmp_path / "lambda.h5"), "--allow-unsafe", "--variant", "qat", "--variant", "prune:0.5",
        "--targets", "cpu", "--precisions", "fp32", *TINY, "--output", str(tmp_path), "--name", "lam", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "qat was skipped" in result.stdout and "'scale'" in result.stdout
    assert "has 12 outputs but the digits data has 10 classes" in result.stderr
    variants = {r["variant"] for r in json.loads((tmp_path / "lam" / "results.json").read_text())}
    assert variants == {"baseline", "prune50"}


@pytest.mark.slow
def test_csv_and_markdown_tables_match_results_json(finished_run):
    run_dir, _ = finished_run
    records = json.loads((run_dir / "results.json").read_text())
    with open(run_dir / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        for key in ("variant", "target", "format", "precision", "path", "latency_measured_on"):
            assert row[key] == record[key], (key, row[key], record[key])
        for key in ("size_bytes", "gzip_bytes", "params", "threads", "batch", "runs"):
            assert int(row[key]) == record[key], (key, record["path"])
        for key in ("accuracy", "accuracy_drop_pp", "agreement"):
            assert float(row[key]) == record[key], (key, record["path"])
        latency = record["latency_ms"]
        for column, key in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("mean_ms", "mean"), ("std_ms", "std")):
            assert float(row[column]) == latency[key], (column, record["path"])
        assert [float(row["ci95_p50_low_ms"]), float(row["ci95_p50_high_ms"])] == latency["ci95_p50"]
        assert row["compatible"] == str(record["compatibility"]["compatible"])

    lines = (run_dir / "report.md").read_text().splitlines()
    start = lines.index("| variant | target | fmt | prec | acc % | drop pp | agree % | SQNR dB | p50 ms | p99 ms | size KB | gzip KB | ops on accel |")
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2:start + 2 + len(records)]]
    following = lines[start + 2 + len(records):start + 3 + len(records)]
    assert len(table) == len(records) and not any(line.startswith("|") for line in following), "one row per record"
    for cells, record in zip(table, records):
        variant, target, fmt, precision, accuracy, drop, agreement, _, p50, p99, size_kb, gzip_kb, _ = cells
        assert [variant, target, fmt, precision] == [record[k] for k in ("variant", "target", "format", "precision")]
        assert float(accuracy) == pytest.approx(record["accuracy"] * 100, abs=0.005)
        assert float(drop) == pytest.approx(record["accuracy_drop_pp"], abs=0.005)
        assert float(agreement) == pytest.approx(record["agreement"] * 100, abs=0.05)
        assert float(p50) == pytest.approx(record["latency_ms"]["p50"], abs=0.00005)
        assert float(p99) == pytest.approx(record["latency_ms"]["p99"], abs=0.00005)
        assert float(size_kb) == pytest.approx(record["size_bytes"] / 1024, abs=0.05)
        assert float(gzip_kb) == pytest.approx(record["gzip_bytes"] / 1024, abs=0.05)


@pytest.mark.slow
def test_force_rebuilds_every_stage(tmp_path):
    """README: re-running reuses everything; `--force` rebuilds (the stage cache is ignored)."""
    args = ("run", "--epochs", "1", "--bench-runs", "20", "--calibration-samples", "16", "--no-variants",
            "--targets", "cpu", "--precisions", "fp32,int8", "--name", "force", "--output", str(tmp_path))
    first = edgesmith(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    built = int(first.stdout.split("stages reused 0, built ")[1].split()[0])
    assert built >= 3
    files = sorted((tmp_path / "force" / "cpu").glob("*.tflite"))
    assert [path.name for path in files] == ["baseline__fp32.tflite", "baseline__int8.tflite"]
    before = {path: path.stat().st_mtime_ns for path in files}

    forced = edgesmith(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert f"stages reused 0, built {built}" in forced.stdout
    assert "[baseline] training" in forced.stderr and "[baseline] cached" not in forced.stderr
    for path in files:
        assert f"[export] {path.relative_to(tmp_path / 'force')}" in forced.stderr, path
    after = {path: path.stat().st_mtime_ns for path in files}
    assert all(after[path] > before[path] for path in files), "every file is written again"

    again = edgesmith(*args, cwd=tmp_path)
    assert again.returncode == 0 and f"stages reused {built}, built 0" in again.stdout, "the rebuilt cache is reused"


@pytest.mark.slow
def test_the_real_runs_html_report_renders_in_a_browser(finished_run, tmp_path):
    """The synthetic records of tests/report reach the browser there; here a real run's page does."""
    import re

    from tests.report.test_browser import open_in_browser

    run_dir, _ = finished_run
    records = json.loads((run_dir / "results.json").read_text())
    dom, console = open_in_browser(run_dir / "report.html", tmp_path / "profile", "--dump-dom")
    assert console == [] and "data-errors" not in dom
    assert re.search(r'<body [^>]*data-rendered="ok"', dom), dom[:500]
    assert len(re.findall(r"<tr data-path=", dom)) == len(records)
    targets = {record["target"] for record in records}
    assert len(re.findall(r'<svg class="plot"', dom)) == 2 * len(targets)
