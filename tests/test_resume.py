"""Interrupted runs resume without redoing finished stages; same seed → same artifacts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

FAST = ["--epochs", "3", "--finetune-epochs", "1", "--bench-runs", "30", "--calibration-samples", "32"]


def _command(output, *extra):
    return [sys.executable, "-m", "toolkit", "run", *FAST, "--name", "r", "--output", str(output), *extra]


def _run(output, *extra):
    return subprocess.run(_command(output, *extra), capture_output=True, text=True, timeout=900)


def _reused(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if "stages reused" in line)
    return int(line.split("stages reused ")[1].split(",")[0])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_resumes_without_redoing_finished_stages(tmp_path, sig):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        _command(tmp_path, "--variant", "qat", "--targets", "cpu,onnx-cpu"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    benched = 0
    for line in process.stderr:  # progress messages go to stderr
        benched += line.startswith("[bench]")
        if benched == 3:
            process.send_signal(sig)
            break
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    run_dir = tmp_path / "r"
    assert not list(run_dir.rglob("*.tmp")), "no temporary files may survive an interrupt"
    assert not (run_dir / "results.json").exists(), "results are written only by a finished run"

    resumed = _run(tmp_path, "--variant", "qat", "--targets", "cpu,onnx-cpu")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "[baseline] cached" in resumed.stderr
    assert _reused(resumed.stdout) >= 1 + 3, "the baseline and the finished artifacts are reused"
    records = json.loads((run_dir / "results.json").read_text())
    assert {r["variant"] for r in records} == {"baseline", "qat"}
    assert all((run_dir / r["path"]).stat().st_size == r["size_bytes"] for r in records)


def _interrupt_at(output, prefix: str, *extra) -> str:
    """Start a run, send SIGINT (Ctrl-C) at its first stderr line starting with `prefix`, return stderr."""
    process = subprocess.Popen(_command(output, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith(prefix):
            process.send_signal(signal.SIGINT)
            break
    _, rest = process.communicate(timeout=300)
    err = "".join(seen) + rest
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not list(output.rglob("*.tmp")) and not (output / "r" / "results.json").exists()
    return err


@pytest.mark.slow
def test_ctrl_c_during_training_and_during_export_then_the_same_command_finishes(tmp_path):
    small = ("--no-variants", "--targets", "cpu", "--precisions", "fp32,dynamic,int8")
    _interrupt_at(tmp_path, "[baseline] training", *small)
    assert "[baseline] training" in _interrupt_at(tmp_path, "[export]", *small), "nothing of the baseline was kept"
    finished = _run(tmp_path, *small)
    assert finished.returncode == 0 and "[baseline] cached" in finished.stderr, finished.stderr[-2000:]
    records = json.loads((tmp_path / "r" / "results.json").read_text())
    assert sorted(r["precision"] for r in records) == ["dynamic", "fp32", "int8"]


@pytest.mark.slow
def test_same_seed_gives_the_same_bytes_for_every_variant_and_target(tmp_path):
    """One run in one go, the other trained its full model in an earlier process (a resume) and
    hashes strings differently: every file must be the same bytes (tf2onnx's invented names,
    deterministic ops and Keras' auto layer names all once made them differ)."""
    chains = ["--model", "mlp", "--targets", "cpu,onnx-cpu", "--precisions", "fp32,int8"]
    variants = ["--variant", "prune:0.5", "--variant", "qat", "--variant", "distill:width=0.5"]
    whole = subprocess.run(_command(tmp_path / "a", *chains, *variants), capture_output=True, text=True, timeout=900,
                           env={**os.environ, "PYTHONHASHSEED": "1"})
    assert whole.returncode == 0, whole.stderr[-2000:]
    for extra in (["--no-variants"], variants):
        resumed = subprocess.run(_command(tmp_path / "b", *chains, *extra), capture_output=True, text=True, timeout=900,
                                 env={**os.environ, "PYTHONHASHSEED": "2"})
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = ({r["path"]: r for r in json.loads((tmp_path / d / "r" / "results.json").read_text())} for d in ("a", "b"))
    assert sorted(a) == sorted(b)
    variants = {r["variant"] for r in a.values()}
    assert {"baseline", "prune50", "qat"} <= variants and {v[:7] for v in variants} >= {"distill", "scratch"}
    assert {r["target"] for r in a.values() if r["variant"] == "qat"} == {"cpu", "onnx-cpu"}
    for path in a:
        assert a[path]["sha256"] == b[path]["sha256"], f"{path} differs between identical runs"
        assert a[path]["accuracy"] == b[path]["accuracy"]
    for model in (tmp_path / "a" / "r" / "variants").rglob("*.h5"):
        twin = tmp_path / "b" / model.relative_to(tmp_path / "a")
        assert model.read_bytes() == twin.read_bytes(), f"{model.relative_to(tmp_path / 'a')} differs"


@pytest.mark.slow
def test_changing_one_pass_redoes_only_that_variant_and_removes_what_it_replaced(tmp_path):
    first = _run(tmp_path, "--variant", "prune:0.5", "--variant", "qat", "--targets", "cpu,onnx-cpu", "--precisions", "fp32")
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "r" / "best" / "onnx-cpu").is_dir() and (tmp_path / "r" / "cpu" / "prune50__fp32.tflite").is_file()
    changed = _run(tmp_path, "--variant", "prune:0.6", "--variant", "qat", "--targets", "cpu", "--precisions", "fp32")
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "[prune60] applying" in changed.stderr
    assert "[qat] applying" not in changed.stderr and "[baseline] cached" in changed.stderr
    run_dir = tmp_path / "r"
    made = {record["path"] for record in json.loads((run_dir / "results.json").read_text())}
    assert sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "cpu").iterdir()) == sorted(made)
    assert not (run_dir / "onnx-cpu").exists() and sorted(p.name for p in (run_dir / "best").iterdir()) == ["cpu"]
    removed = next(line for line in changed.stderr.splitlines() if "an earlier run left that this run did not make" in line)
    assert "cpu/prune50__fp32.tflite" in removed and "onnx-cpu/baseline__fp32.onnx" in removed, removed


@pytest.mark.slow
def test_a_chain_reuses_its_prefix_chain_with_the_same_bytes(tmp_path):
    """`prune:0.5+qat` starts from `prune:0.5`'s saved model: built inside the chain in one run,
    taken from the cache in the other, the chain's files are the same bytes."""
    chain = ["--model", "mlp", "--targets", "cpu", "--precisions", "int8"]
    alone = _run(tmp_path / "a", *chain, "--variant", "prune:0.5+qat")
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert (tmp_path / "a" / "r" / "variants" / "prune50" / "model.h5").is_file()
    both = _run(tmp_path / "b", *chain, "--variant", "prune:0.5", "--variant", "prune:0.5+qat")
    assert both.returncode == 0, both.stderr[-2000:]
    assert both.stderr.count("applying prune:0.5") == 1 and "[prune50+qat] applying qat to prune50" in both.stderr
    a, b = ({r["path"]: r for r in json.loads((tmp_path / d / "r" / "results.json").read_text())} for d in ("a", "b"))
    path = "cpu/prune50+qat__int8.tflite"
    assert a[path]["sha256"] == b[path]["sha256"] and a[path]["accuracy"] == b[path]["accuracy"]
    steps = json.loads((tmp_path / "b" / "r" / "run.json").read_text())["variants"]["prune50+qat"]["steps"]
    assert [step["step"] for step in steps] == ["prune:0.5", "qat"]
