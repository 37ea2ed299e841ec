"""Benchmarks on a device over SSH: the same method as here, one-line errors, faults survived."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import toolkit
from toolkit.cli import main
from toolkit.cpu_features import cpu_features, describe
from toolkit.devices import MeasurementFailed, measure, open_device
from toolkit.devices.ssh import OPTIONS_ENV
from toolkit.targets import load_target

PAIRS = 5
TINY = ["--epochs", "2", "--bench-runs", "30", "--calibration-samples", "32", "--variant", "qat", "--targets", "cpu"]


@pytest.fixture(scope="module")
def cnn_tflite(tmp_path_factory):
    """An untrained Fashion-MNIST-sized cnn (timing does not depend on the weights)."""
    from toolkit.converters.tflite import convert_to_file
    from toolkit.models import build

    return convert_to_file(build("cnn", (28, 28, 1), 10), tmp_path_factory.mktemp("cnn") / "cnn.tflite", "fp32")


@pytest.fixture
def client(sshd, monkeypatch):
    monkeypatch.setenv(OPTIONS_ENV, sshd.client_config())
    return sshd


@pytest.mark.slow
def test_bench_over_ssh_agrees_with_local_bench(client, device_python, cnn_tflite):
    """Same machine, same method: the ssh p50 lands within a third of the local p50.

    The within-run repeat interval is too tight a yardstick: on a shared machine the local p50
    alone moves by 30% between back-to-back runs. A systematic difference is far larger: the
    transport inside the timing would add an ssh round trip (a millisecond or more) to a 0.15 ms
    inference, a ratio above 5. Pairs alternate (local, then ssh) up to PAIRS times; one pair
    within the band passes."""
    ratios = []
    for _ in range(PAIRS):
        local = toolkit.bench(cnn_tflite, runs=1000)
        remote = toolkit.bench(cnn_tflite, runs=1000, device=client.url(device_python))
        assert set(remote) == set(local) and remote["latency_measured_on"].endswith(" via ssh")
        assert remote["latency_cpu"] == local["latency_cpu"] == describe(cpu_features())  # the same machine
        assert remote["peak_memory_mb"] > 0 and remote["latency_ms_all_cores"] is not None
        ratio = remote["latency_ms"]["p50"] / local["latency_ms"]["p50"]
        if 0.75 <= ratio <= 1.33:
            return
        ratios.append(round(ratio, 3))
    pytest.fail(f"ssh p50 / local p50 outside [0.75, 1.33] in every pair: {ratios}")


def test_probe_describes_the_device_which_needs_no_tensorflow(client, device_python, capsys):
    assert main(["device", "probe", client.url(device_python)]) == 0
    text = capsys.readouterr().out
    assert f"cpu        {describe(cpu_features())}" in text
    assert "ai-edge-litert 2." in text and "onnxruntime 1." in text and "CPUExecutionProvider" in text
    assert "LiteRT GPU delegate not available: libtensorflowlite_gpu_delegate.so does not load" in text
    assert "Edge TPU not available: libedgetpu.so.1 does not load" in text
    assert main(["device", "probe", client.url(device_python), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["cpu"] == cpu_features() and facts["python"].startswith("3.")
    assert not any(item["loads"] for item in facts["accelerators"].values())
    lacks_tensorflow = subprocess.run([device_python, "-c", "import tensorflow"], capture_output=True)
    assert lacks_tensorflow.returncode != 0, "the device venv must hold only numpy and the runtimes"


def test_a_delegate_that_does_not_load_leaves_the_latency_empty(client, device_python, cnn_tflite, digits):
    device = open_device(client.url(device_python))
    sample = np.zeros((1, 28, 28, 1), dtype=np.float32)
    with pytest.raises(MeasurementFailed, match="Edge TPU not available: libedgetpu.so.1 does not load"):
        device.benchmark(cnn_tflite, sample, 30, 1, 1, "edgetpu")
    settings = {"runs": 30, "threads": 1, "batch": 1, "target_width": 0.02, "budget_s": 0.5}
    timing = measure(device, cnn_tflite, sample, np.zeros(1), settings, load_target("gpu"))
    assert timing["latency_ms"] is None and timing["latency_on_device"] is True
    assert "LiteRT GPU delegate not available" in timing["latency_error"], "never a silent CPU fallback"
    assert timing["latency_measured_on"].endswith("via ssh, LiteRT GPU delegate")


def _strangers(server):
    host = (server.folder / "known_hosts").read_text().split()[0]
    stranger = " ".join((server.folder / "stranger_key.pub").read_text().split()[:2])
    (server.folder / "wrong_known_hosts").write_text(f"{host} {stranger}\n")
    (server.folder / "empty_known_hosts").write_text("")


@pytest.mark.parametrize("case, expected", [
    ("wrong key", r"the device refused the login .*Permission denied.* — install your public key there with `ssh-copy-id -p \d+ "),
    ("unknown host", r"the device's host key is not known \(edgesmith never asks\) — connect once with `ssh -p \d+ "),
    ("changed host key", r"host key has changed since the last connection — if the device was reinstalled, run `ssh-keygen -R"),
    ("no python", r"/nowhere/python3 was not found on the device — install Python 3 there"),
    ("no runtimes", r"on the device lacks numpy, ai-edge-litert \(for cnn.tflite\) — on the device: pip install numpy ai-edge-litert"),
    ("unreachable", r"cannot reach the device \(.*Connection refused\) — check that it is on"),
])
def test_device_faults_are_one_line_with_the_fix(sshd, device_python, bare_python, cnn_tflite, monkeypatch, capsys,
                                                 case, expected):
    monkeypatch.setenv(OPTIONS_ENV, sshd.client_config())
    assert main(["device", "probe", sshd.url(device_python)]) == 0  # the host key is known from here on
    _strangers(sshd)
    url = sshd.url(bare_python if case == "no runtimes" else "/nowhere/python3" if case == "no python" else device_python)
    if case == "wrong key":
        monkeypatch.setenv(OPTIONS_ENV, sshd.client_config("wrong_key_config", key="stranger_key"))
    elif case in ("unknown host", "changed host key"):
        known = "empty_known_hosts" if case == "unknown host" else "wrong_known_hosts"
        monkeypatch.setenv(OPTIONS_ENV, sshd.client_config(f"{known}_config", strict="yes", known_hosts=known))
    elif case == "unreachable":
        url = f"ssh://127.0.0.1:{_closed_port()}"
    capsys.readouterr()
    started = time.monotonic()
    assert main(["bench", str(cnn_tflite), "--device", url, "--runs", "30"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("edgesmith: error: ssh://")
    assert re.search(expected, error), error
    assert time.monotonic() - started < 30, "a fault is reported at once, never after a hang"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _edgesmith(*args, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", "run", *TINY, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _env(server) -> dict[str, str]:
    return {**os.environ, OPTIONS_ENV: server.client_config(), "PYTHONUNBUFFERED": "1"}


def test_an_unreachable_device_stops_the_run_before_training(tmp_path):
    started = time.monotonic()
    result = _edgesmith("--device", f"cpu=ssh://127.0.0.1:{_closed_port()}", "--output", str(tmp_path), cwd=tmp_path,
                        env=dict(os.environ))
    assert result.returncode == 2 and "cannot reach the device" in result.stderr, result.stderr[-2000:]
    assert "[baseline]" not in result.stderr and not list(tmp_path.iterdir())
    assert time.monotonic() - started < 60


def test_a_bad_port_or_timeout_in_the_address_names_which():
    from toolkit.devices.ssh import SshAddress
    from toolkit.errors import EdgesmithError

    with pytest.raises(EdgesmithError, match="the port is not a number from 0 to 65535"):
        SshAddress.parse("ssh://pi@127.0.0.1:99999")
    with pytest.raises(EdgesmithError, match="the timeout is not a number of seconds"):
        SshAddress.parse("ssh://pi@127.0.0.1?timeout=soon")


def test_a_microcontroller_target_refuses_a_device_before_connecting(tmp_path):
    """Its latency is an estimate: a device address there would be silently unused."""
    result = _edgesmith("--targets", "mcu-cortex-m4", "--device", f"mcu-cortex-m4=ssh://127.0.0.1:{_closed_port()}",
                        "--output", str(tmp_path), cwd=tmp_path, env=dict(os.environ))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "mcu-cortex-m4 (tflm) cannot be timed on a device (SSH or a Ray node)" in result.stderr
    assert "cannot reach the device" not in result.stderr and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_run_measures_its_target_on_the_device(sshd, device_python, tmp_path):
    result = _edgesmith("--device", f"cpu={sshd.url(device_python)}", "--device-accuracy", "--name", "pi",
                        "--output", str(tmp_path), cwd=tmp_path, env=_env(sshd))
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((tmp_path / "pi" / "results.json").read_text())
    assert len(records) == 5  # baseline fp32/fp16/dynamic/int8 + qat int8
    for record in records:
        assert record["latency_on_device"] and record["latency_measured_on"].endswith(" via ssh")
        assert record["latency_ms"]["p50"] > 0 and record["latency_cpu"] == describe(cpu_features())
        assert record["latency_method"]["target_width"] == 0.02 and record["latency_ms"]["stopped_by"] in ("width", "budget")
        assert record["device_accuracy"]["agreement_with_host"] == 1.0  # same runtime, same CPU
        assert (sshd.home / ".cache" / "edgesmith" / f"{record['sha256']}.tflite").is_file()
    info = json.loads((tmp_path / "pi" / "run.json").read_text())
    assert info["devices"]["cpu"]["url"] == sshd.url(device_python)


@pytest.mark.slow
def test_a_device_lost_mid_run_costs_only_its_measurements(own_sshd, device_python, tmp_path):
    command = [sys.executable, "-m", "toolkit", "run", *TINY, "--device", f"cpu={own_sshd.url(device_python)}",
               "--name", "lost", "--output", str(tmp_path)]
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(own_sshd), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # progress messages go to stderr
        if line.startswith("[bench]"):
            own_sshd.stop()  # the device goes away after its first measurement
            break
    summary, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    records = json.loads((tmp_path / "lost" / "results.json").read_text())
    missing = [r for r in records if r["latency_ms"] is None]
    assert 1 <= len(missing) < len(records), "the measurement before the loss is kept"
    assert all("cannot reach the device" in r["latency_error"] for r in missing)
    assert "not timed" in summary and "the same command measures them" in summary

    own_sshd.start()
    again = subprocess.run(command, cwd=tmp_path, env=_env(own_sshd), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    measured = [line for line in again.stderr.splitlines() if line.startswith("[bench]")]
    assert len(measured) == len(missing), "only what was missing is measured again"
    records = json.loads((tmp_path / "lost" / "results.json").read_text())
    assert all(r["latency_ms"] is not None and r["latency_error"] is None for r in records)
