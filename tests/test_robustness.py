"""Faults a user meets: two runs on one folder, a full disk, labels that cannot be learned."""
from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from toolkit.data import from_arrays
from toolkit.data_sanity import label_warnings
from toolkit.errors import EdgesmithError, write_failure
from toolkit.files import sha256_file
from toolkit.run_lock import run_lock

TINY = ["--epochs", "2", "--finetune-epochs", "1", "--bench-runs", "20", "--calibration-samples", "32",
        "--variant", "qat", "--targets", "cpu,onnx-cpu"]


def edgesmith(*args, cwd, limit_bytes: int | None = None):
    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200, preexec_fn=limit)


def test_a_second_holder_waits_or_fails_and_names_the_first(tmp_path):
    events = []
    with run_lock(tmp_path, log=events.append):
        with pytest.raises(EdgesmithError, match=rf"another edgesmith run is using .* \(pid {os.getpid()} on "):
            with run_lock(tmp_path, wait=False, log=events.append):
                pass
        released = threading.Event()

        def second() -> None:
            with run_lock(tmp_path, log=events.append):
                released.set()

        waiter = threading.Thread(target=second)
        waiter.start()
        deadline = time.monotonic() + 30  # a loaded machine may start the thread late
        while not any("waiting for it to finish" in event for event in events) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("waiting for it to finish" in event for event in events)
        time.sleep(0.2)
        assert not released.is_set()
    waiter.join(10)
    assert released.is_set()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from toolkit.run_lock import run_lock\n"
        "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)"), str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    events = []
    with run_lock(tmp_path, wait=False, log=events.append):
        assert any(f"last pid {holder.pid}" in event and "no longer running" in event for event in events)


@pytest.mark.parametrize(("code", "expected"), [(errno.ENOSPC, "the disk is full writing"),
                                                (errno.EROFS, "the file system is read-only writing")])
def test_write_failures_name_the_path_free_space_and_fix(tmp_path, code, expected):
    message = write_failure(OSError(code, os.strerror(code), str(tmp_path / "run" / "model.h5")))
    assert message.startswith(expected) and "MB free there" in message and "run the same command again" in message
    assert write_failure(OSError(errno.ECONNRESET, "reset")) is None  # not a write problem: a bug


def test_labels_that_cannot_be_learned_are_refused_or_reported():
    x = np.zeros((40, 8), np.float32)
    with pytest.raises(EdgesmithError, match="every training label is class 0"):
        from_arrays({"x_train": x, "y_train": np.zeros(40, int), "x_test": x[:4], "y_test": np.array([0, 1, 0, 1])})
    unseen = label_warnings(np.arange(40) % 2, np.array([0, 1, 2]))
    assert len(unseen) == 1 and unseen[0].startswith("test classes [2] never occur in the training labels")
    imbalanced = label_warnings(np.array([0] * 100 + [1] * 3), np.array([0, 1]))
    assert len(imbalanced) == 1 and imbalanced[0].startswith("the training labels are very imbalanced: class 1 has 3")
    assert label_warnings(np.arange(100) % 3, np.array([0, 1, 2])) == []


@pytest.mark.slow
def test_two_concurrent_runs_on_one_folder_leave_consistent_records(tmp_path):
    args = ["run", *TINY, "--name", "shared", "--output", str(tmp_path)]
    first = subprocess.Popen([sys.executable, "-m", "toolkit", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    second = edgesmith(*args, cwd=tmp_path)
    out, err = first.communicate(timeout=1200)
    assert first.returncode == 0 and second.returncode == 0, (err[-2000:], second.stderr[-2000:])
    assert "is in use (pid" in second.stderr + err  # one of them waited, and said for whom
    run_dir = tmp_path / "shared"
    for record in json.loads((run_dir / "results.json").read_text()):
        assert sha256_file(run_dir / record["path"]) == record["sha256"], record["path"]


@pytest.mark.slow
def test_a_full_disk_stops_with_one_line_and_the_same_command_resumes(tmp_path):
    args = ["run", *TINY, "--name", "full", "--output", str(tmp_path)]
    stopped = edgesmith(*args, cwd=tmp_path, limit_bytes=64 * 1024)  # files over 64 KB cannot be written
    assert stopped.returncode == 4, stopped.stderr[-2000:]
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("edgesmith: error: the file size limit was reached writing ") and "MB free there" in last
    leftovers = [p for p in (tmp_path / "full").rglob("*") if p.is_file() and ".tmp" in str(p)]
    assert leftovers == [], leftovers
    resumed = edgesmith(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    records = json.loads((tmp_path / "full" / "results.json").read_text())
    assert {r["variant"] for r in records} == {"baseline", "qat"}


def _write_run(folder, accuracy: float, results_written: threading.Event | None = None) -> None:
    """results.json then run.json, each atomically, as a run writes them (run.json names its
    results by hash). A plain write_text would let the reader see a truncated file."""
    import hashlib

    from toolkit.files import json_text, write_text

    record = {"variant": "baseline", "target": "cpu", "format": "tflite", "precision": "int8", "path": "cpu/b.tflite",
              "accuracy": accuracy, "accuracy_drop_pp": 0.0, "latency_ms": None, "size_bytes": 1, "gzip_bytes": 1}
    text = json_text([record])
    write_text(folder / "results.json", text)
    if results_written is not None:
        results_written.set()
    time.sleep(0.3)  # a reader in between sees a results.json that its run.json does not name
    write_text(folder / "run.json", json.dumps({"results_sha256": hashlib.sha256(text.encode()).hexdigest(), "accuracy": accuracy}))


def test_readers_never_pair_one_runs_records_with_another_runs_info(tmp_path):
    from toolkit.records import load_results

    _write_run(tmp_path, 0.5)
    results_written = threading.Event()
    writer = threading.Thread(target=_write_run, args=(tmp_path, 0.9, results_written))
    writer.start()
    assert results_written.wait(timeout=30)
    records, info = load_results(tmp_path)  # mid-write: waits for the matching run.json
    writer.join()
    assert records[0]["accuracy"] == info["accuracy"] == 0.9
    (tmp_path / "results.json").write_text((tmp_path / "results.json").read_text().replace("0.9", "0.7"))
    with pytest.raises(EdgesmithError, match="results.json and run.json are from different runs"):
        load_results(tmp_path, wait_s=0.2)
