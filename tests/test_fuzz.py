"""Seeded mutations of valid input files through `check`, `bench` and `run`: whatever the damage,
edgesmith answers with its own one line (or a result), never a traceback, a hang or a crash."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from toolkit.benchmark import isolated
from toolkit.errors import EdgesmithError

SEEDS = range(5)
RUN = ["--no-variants", "--targets", "cpu", "--precisions", "fp32", "--bench-runs", "20", "--epochs", "1"]


def mutate(data: bytes, seed: int) -> bytes:
    """A few random bytes overwritten, sometimes truncated: the damage a bad copy or disk does."""
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(rng.choice([1, 4, 16, 64])):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out[: rng.randrange(1, len(out))] if rng.random() < 0.3 else out)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    from toolkit._tf import keras
    from toolkit.converters.onnx import export_keras
    from toolkit.converters.tflite import convert_to_file

    folder = tmp_path_factory.mktemp("valid")
    k = keras()
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Conv2D(4, 3), k.layers.Flatten(), k.layers.Dense(10)])
    calibration = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
    files = {
        "tflite": convert_to_file(model, folder / "m.tflite", "int8", calibration_x=calibration),
        "onnx": export_keras(model, folder / "m.onnx", (8, 8, 1)),
        "h5": folder / "m.h5", "keras": folder / "m.keras", "npz": folder / "d.npz", "toml": folder / "e.toml",
    }
    model.save(files["h5"])
    model.save(files["keras"])
    rng = np.random.default_rng(1)
    np.savez(files["npz"], x_train=rng.random((60, 8, 8, 1)), y_train=np.arange(60) % 10,
             x_test=rng.random((30, 8, 8, 1)), y_test=np.arange(30) % 10)
    files["toml"].write_text('name = "fuzz"\nepochs = 1\ntargets = ["cpu"]\nbench_runs = 20\nvariants = []\n'
                             'precisions = ["fp32"]\n')
    return files


def _edgesmith(args, cwd):
    try:
        return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"edgesmith {' '.join(args)} hung")


def _answers_cleanly(result, allowed: set[int]) -> None:
    assert result.returncode in allowed, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr[-2000:]
    if result.returncode == 2:
        assert result.stderr.strip().splitlines()[-1].startswith("edgesmith: error: "), result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tflite", "onnx"])
@pytest.mark.parametrize("seed", SEEDS)
def test_damaged_model_files_through_check_and_bench(valid_files, kind, seed, tmp_path):
    damaged = tmp_path / f"damaged.{kind}"
    damaged.write_bytes(mutate(valid_files[kind].read_bytes(), seed))
    target = "cpu" if kind == "tflite" else "onnx-cpu"
    _answers_cleanly(_edgesmith(["check", str(damaged), "--target", target], tmp_path), {0, 1, 2})
    _answers_cleanly(_edgesmith(["bench", str(damaged), "--runs", "20"], tmp_path), {0, 2})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["h5", "keras", "npz", "toml"])
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_damaged_run_inputs(valid_files, kind, seed, tmp_path):
    damaged = tmp_path / f"damaged.{kind}"
    data = valid_files[kind].read_bytes()
    damaged.write_bytes(mutate(data, seed) if kind != "toml" else mutate(data, seed)[: len(data)])
    source = {"h5": ["--model", str(damaged)], "keras": ["--model", str(damaged)],
              "npz": ["--dataset", "npz", "--data", str(damaged)], "toml": [str(damaged)]}[kind]
    args = ["run", *source, *RUN] if kind != "toml" else ["run", *source]
    _answers_cleanly(_edgesmith([*args, "--output", str(tmp_path / "runs")], tmp_path), {0, 2})


def test_a_runtime_that_crashes_or_hangs_in_the_child_is_one_line(valid_files, monkeypatch):
    """No damaged file crashed a runtime here, so the child is made to crash and to hang."""
    isolated.survives_loading(valid_files["tflite"])
    monkeypatch.setattr(isolated, "_OPEN_AND_INVOKE", "import os; os.abort()")
    with pytest.raises(EdgesmithError, match=r"the runtime crashed loading .*m.tflite \(SIGABRT\)"):
        isolated.survives_loading(valid_files["tflite"])
    monkeypatch.setattr(isolated, "_OPEN_AND_INVOKE", "import time; time.sleep(30)")
    monkeypatch.setattr(isolated, "TIMEOUT_S", 1)
    with pytest.raises(EdgesmithError, match=r"the runtime hung loading .*m.tflite \(no answer in 1 s\)"):
        isolated.survives_loading(valid_files["tflite"])


def test_an_onnx_name_that_is_not_utf8_is_a_blocker_not_a_crash(valid_files, tmp_path):
    """Found by the mutations above: onnx.checker raised UnicodeDecodeError on a damaged name."""
    import onnx

    import toolkit

    data = valid_files["onnx"].read_bytes()
    name = onnx.load(str(valid_files["onnx"])).graph.initializer[0].name.encode()
    damaged = tmp_path / "name.onnx"
    damaged.write_bytes(data.replace(name, b"\xdd\x41" + name[2:], 1))
    report = toolkit.check(damaged, "onnx-cpu")
    assert not report.compatible and any("onnx.checker rejects the model" in blocker for blocker in report.blockers)
