"""End to end: `edgesmith search` on digits with a tiny MLP; then a resumed search."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

EXPERIMENT = """name = "{name}"
dataset = "digits"
model = "mlp"
epochs = 2
finetune_epochs = 1
bench_runs = 20
calibration_samples = 32
targets = ["cpu"]
output = "{output}"

[search]
prune = [0.3, 0.8]
precision = ["fp32", "int8"]
"""


def write_experiment(folder, name):
    path = folder / f"{name}.toml"
    path.write_text(EXPERIMENT.format(name=name, output=folder.as_posix()))
    return path


def edgesmith(*args, cwd):
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def complete(document):
    return [trial for trial in document["trials"] if trial["state"] == "COMPLETE"]


@pytest.mark.slow
def test_search_measures_trials_and_reports_a_non_dominated_front(tmp_path):
    result = edgesmith("search", str(write_experiment(tmp_path, "s")), "--trials", "3", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert document == json.loads((tmp_path / "s" / "search.json").read_text())
    trials = complete(document)
    assert len(trials) == 3 and document["objectives"] == ["accuracy", "latency"]
    feasible = [t for t in trials if t["feasible"]]
    assert document["front"], "a budget of 1 pp holds at least the full model at fp32"
    for point in document["front"]:
        mine = (point["accuracy"], point["latency_p50_ms"])
        assert not any(t["values"]["accuracy"] >= mine[0] and t["values"]["latency"] <= mine[1]
                       and (t["values"]["accuracy"], t["values"]["latency"]) != mine for t in feasible)
        low, high = point["latency_interval_ms"]
        assert low <= point["latency_p50_ms"] <= high
    on_front = {t["number"] for t in feasible if t["on_front"]}
    assert {p["number"] for p in document["front"]} <= on_front
    records = json.loads((tmp_path / "s" / "results.json").read_text())
    assert {(t["variant"], t["precision"]) for t in trials} <= {(r["variant"], r["precision"]) for r in records}
    assert all(t["chain"] is not None and t["path"].startswith("cpu/") for t in trials)
    report = (tmp_path / "s" / "report.md").read_text()
    assert "## Search" in report and "Pareto front" in report
    html = (tmp_path / "s" / "report.html").read_text()
    assert '<section id="search">' in html and f"{len(trials)} complete trials" in html
    assert json.loads((tmp_path / "s" / "run.json").read_text())["search"]["front"] == document["front"]


@pytest.mark.slow
def test_a_resumed_search_counts_finished_trials_and_retries_an_abandoned_one(tmp_path):
    from toolkit.search.space import SearchSpace

    experiment = write_experiment(tmp_path, "r")
    first = edgesmith("search", str(experiment), "--trials", "2", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = complete(json.loads(first.stdout))
    assert len(before) == 2
    # A search killed mid-trial leaves it RUNNING, with its parameters drawn.
    study = optuna.load_study(study_name="r-cpu", storage=f"sqlite:///{tmp_path / 'r' / 'search.db'}")
    abandoned = study.ask()
    SearchSpace(prune=(0.3, 0.8), precision=("fp32", "int8")).sample(abandoned, ("fp32", "int8"))
    second = edgesmith("search", str(experiment), "--trials", "4", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"trial {abandoned.number} was left running" in second.stderr
    document = json.loads(second.stdout)
    after = complete(document)
    assert len(after) == 4
    assert [(t["number"], t["values"]) for t in after[:2]] == [(t["number"], t["values"]) for t in before]
    states = {t["number"]: t["state"] for t in document["trials"]}
    assert states[abandoned.number] == "FAIL"
    assert document["trials"][abandoned.number]["reason"].startswith("interrupted before it finished")
    assert len(document["trials"]) == 5  # 2 + the abandoned one + 2 new: nothing else was asked
    retried = [t for t in after if t["number"] > abandoned.number and t["params"] == abandoned.params]
    assert retried, "the abandoned trial's parameters are asked again"
    records = json.loads((tmp_path / "r" / "results.json").read_text())
    assert {(t["variant"], t["precision"]) for t in after} <= {(r["variant"], r["precision"]) for r in records}


@pytest.mark.slow
def test_search_builds_its_trials_in_local_processes(tmp_path):
    experiment = write_experiment(tmp_path, "p")
    experiment.write_text(experiment.read_text().replace("targets = ", "build_workers = 2\ntargets = "))
    result = edgesmith("search", str(experiment), "--trials", "2", "--executor", "processes", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(complete(json.loads(result.stdout))) == 2
    assert "[build] building" in result.stderr and "built in a local process" in result.stderr


def test_an_estimated_latency_is_marked_in_the_search_tables():
    from toolkit.search.summary import front_rows, markdown_section

    point = {"number": 0, "variant": "qat", "chain": ["qat"], "precision": "int8", "path": "mcu/qat__int8.tflite",
             "accuracy": 0.95, "accuracy_drop_pp": 0.1, "size_bytes": 2048, "latency_p50_ms": 0.1887,
             "latency_interval_ms": None, "latency_interval": None, "latency_kind": "estimated"}
    trial = {"number": 0, "state": "COMPLETE", "variant": "qat", "precision": "int8", "feasible": True, "on_front": True,
             "values": {"accuracy": 0.95, "latency": 0.1887}, "latency_kind": "estimated"}
    document = {"study": "s", "target": "mcu-cortex-m4", "objectives": ["accuracy", "latency"],
                "directions": ["maximize", "minimize"], "trials": [trial], "front": [point]}
    assert front_rows(document)[1][4] == "0.1887 est."
    section = "\n".join(markdown_section(document))
    assert "| 0.1887 ms est. |" in section and "Pareto front (estimated latency, never measured;" in section
