"""Command-line conventions: --version, help text, --json, exit codes, logging, bench options,
no import side effects, and profiles inside the wheel."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from toolkit import cli_run
from toolkit.benchmark.device_bench import SESSIONS, session_runs
from toolkit.cli import build_parser, main
from toolkit.passes import parse_chain
from toolkit.targets import list_targets, targets_dir

ROOT = Path(__file__).resolve().parent.parent
BUILT_IN = ("cpu", "gpu", "edgetpu", "onnx-cpu")


@pytest.fixture(autouse=True)
def built_in_targets_only(monkeypatch):
    monkeypatch.delenv("EDGESMITH_TARGETS_DIR", raising=False)


def help_text(*argv: str, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgesmith {metadata.version('edgesmith')}"


def test_run_help_lists_choices_and_the_pass_syntax(capsys):
    text = help_text("run", capsys=capsys)
    for example in ("prune:0.8", "prune:2:4", "cluster:16", "distill:width=0.5", "--variant 'prune:0.8+qat'"):
        assert example in text
    for name in [target.name for target in list_targets()] + ["digits", "fashion-mnist", "cnn", "dscnn", "dynamic"]:
        assert name in text
    assert "exit codes" in help_text(capsys=capsys)


def test_help_examples_are_valid_chains():
    for text, _ in cli_run.STEP_EXAMPLES:
        assert parse_chain([text])
    for chain in cli_run.CHAIN_EXAMPLES:
        assert len(parse_chain(chain.split(cli_run.STEP_SEPARATOR))) >= 2


def test_every_option_of_every_command_has_help():
    def check(parser, name):
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            for command, subparser in (action.choices or {}).items() if action.dest.endswith("command") else ():
                check(subparser, f"{name} {command}")

    check(build_parser(), "edgesmith")


def test_targets_json_and_an_extra_profiles_folder(tmp_path, capsys):
    (tmp_path / "pi4.toml").write_text((targets_dir() / "cpu.toml").read_text().replace('name = "cpu"', 'name = "pi4"'))
    assert main(["targets", "--json", "--targets-dir", str(tmp_path)]) == 0
    profiles = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(BUILT_IN) < set(profiles) and "pi4" in profiles
    assert {"runtime", "precisions", "measured_on", "source", "built_in"} <= set(profiles["cpu"])
    assert profiles["cpu"]["built_in"] and not profiles["pi4"]["built_in"]
    assert main(["targets", "--targets-dir", str(tmp_path / "missing")]) == 2
    assert "targets folder" in capsys.readouterr().err


def test_an_unexpected_exception_is_one_line_and_exit_3(monkeypatch, capsys):
    def broken(extra_dir=""):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("toolkit.targets.list_targets", broken)
    assert main(["targets"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgesmith: internal error: RuntimeError: boom — please report") and "\n" not in err
    assert "--debug shows the traceback" in err
    with pytest.raises(RuntimeError):
        main(["targets", "--debug"])


def test_verbose_adds_debug_lines_and_quiet_keeps_stderr_empty(capsys):
    assert main(["-v", "targets"]) == 0
    assert "debug: edgesmith" in capsys.readouterr().err
    assert main(["targets", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "cpu" in captured.out
    assert main(["targets"]) == 0
    assert "debug" not in capsys.readouterr().err


def test_command_line_options_override_the_experiment_file(tmp_path, monkeypatch, capsys):
    """README: every `run` option is a key of the TOML file, and options given on the command line
    override the file; keys not given on the command line keep the file's value (not the default)."""
    from toolkit.config import Experiment
    from toolkit.errors import EdgesmithError

    path = tmp_path / "exp.toml"
    path.write_text('name = "from-file"\nepochs = 7\nbatch_size = 48\ntargets = ["gpu", "edgetpu"]\n'
                    'precisions = ["fp32"]\nvariants = [["prune:0.5"]]\nbench_runs = 123\nseed = 5\n')
    seen = []

    def fake_run(experiment, **_):
        seen.append(experiment)
        raise EdgesmithError("stopped before training", "this is a test")

    monkeypatch.setattr("toolkit.pipeline.run", fake_run)
    argv = ["run", str(path), "--epochs", "2", "--targets", "cpu,onnx-cpu", "--variant", "qat", "--variant", "prune:0.8+qat",
            "--bench-runs", "40", "--force", "--output", str(tmp_path / "runs")]
    assert main(argv) == 2 and "stopped before training" in capsys.readouterr().err
    (experiment,) = seen
    assert (experiment.epochs, experiment.targets, experiment.bench_runs, experiment.force) == (2, ("cpu", "onnx-cpu"), 40, True)
    assert [variant.chain for variant in experiment.variants] == [("qat",), ("prune:0.8", "qat")]
    assert (experiment.run_name, experiment.batch_size, experiment.precisions, experiment.seed) == ("from-file", 48, ("fp32",), 5)
    defaults = Experiment()
    assert experiment.batch_size != defaults.batch_size and experiment.seed != defaults.seed


@pytest.mark.parametrize("runs", [1, 7, SESSIONS, 37, 300, 301])
def test_runs_split_over_sessions_exactly(runs):
    counts = session_runs(runs)
    assert sum(counts) == runs and len(counts) == min(SESSIONS, runs)
    assert min(counts) >= 1 and max(counts) - min(counts) <= 1


@pytest.fixture(scope="module")
def small_tflite(tmp_path_factory) -> Path:
    from toolkit._tf import keras
    from toolkit.converters.tflite import convert_to_file

    k = keras()
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    return convert_to_file(model, tmp_path_factory.mktemp("bench") / "small.tflite", "fp32")


def test_bench_times_exactly_the_runs_asked_on_real_inputs(small_tflite, tmp_path, capsys):
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.random.default_rng(1).random((5, 8, 8, 1), dtype=np.float32))
    assert main(["bench", str(small_tflite), "--runs", "37", "--input", str(inputs), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["latency_ms"]["runs"] == figures["runs"] == 37
    assert figures["latency_method"]["runs"] == 37 and figures["input"] == str(inputs)
    assert figures["latency_ms"]["stopped_by"] == "plan" and figures["latency_method"]["target_width"] == 0


def test_device_bench_script_runs_the_adaptive_plan_as_a_device_would(small_tflite):
    """The script a device runs, alone in its folder's imports: the adaptive plan, with its flags."""
    from toolkit.benchmark import device_bench
    from toolkit.benchmark.timing import MIN_SESSIONS

    command = [sys.executable, device_bench.__file__, str(small_tflite), "--runs", "40", "--target-width", "0.02",
               "--budget-s", "0.3", "--json"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    figures = json.loads(completed.stdout)
    latency = figures["latency_ms"]
    assert latency["stopped_by"] in ("width", "budget") and latency["sessions"] >= MIN_SESSIONS
    assert latency["runs"] == figures["runs"] == 4 * latency["sessions"], "sessions of runs / 10 calls each"
    assert figures["latency_method"] == {"runs": 40, "threads": 1, "batch": 1, "budget_s": 0.3, "target_width": 0.02}
    both = subprocess.run(command + ["--exact"], capture_output=True, text=True, timeout=120)
    assert both.returncode == 2 and "pass one of them" in json.loads(both.stdout)["fix"]


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 8, 8), np.float32), "shape (4, 8, 8); the model expects (n, 8, 8, 1) or (8, 8, 1)"),
    (np.zeros((8, 8, 1), np.int64), "must hold finite float values (got int64)"),
], ids=["shape", "dtype"])
def test_bench_rejects_inputs_that_do_not_fit_the_model(small_tflite, tmp_path, capsys, array, message):
    inputs = tmp_path / "bad.npy"
    np.save(inputs, array)
    assert main(["bench", str(small_tflite), "--input", str(inputs)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgesmith: error:") and "\n" not in err
    assert message in err


def test_targets_dir_reaches_check_and_run(small_tflite, tmp_path, capsys):
    (tmp_path / "pi4.toml").write_text((targets_dir() / "cpu.toml").read_text().replace('name = "cpu"', 'name = "pi4"'))
    assert main(["check", str(small_tflite), "--target", "pi4", "--targets-dir", str(tmp_path), "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["target"] == "pi4"
    output = tmp_path / "runs"
    assert main(["run", "--targets", "pi4", "--targets-dir", str(tmp_path / "missing"), "--output", str(output)]) == 2
    assert "targets folder" in capsys.readouterr().err and not output.exists()


def test_a_reader_that_stops_early_keeps_the_commands_verdict(small_tflite):
    """`edgesmith check fp32.tflite --target edgetpu | head -1`: the answer is still "incompatible"."""
    process = subprocess.Popen([sys.executable, "-m", "toolkit", "check", str(small_tflite), "--target", "edgetpu"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    process.stdout.close()  # gone before the command writes a line
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err.decode()[-2000:]
    assert b"Traceback" not in err


def _env_after(code: str, **env: str) -> str:
    clean = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_importing_the_package_leaves_gpus_visible():
    code = ("import os, toolkit, toolkit._tf, toolkit.pipeline, toolkit.cli; "
            "print(repr(os.environ.get('CUDA_VISIBLE_DEVICES')))")
    assert _env_after(code) == "None"
    assert _env_after(code, CUDA_VISIBLE_DEVICES="0") == "'0'"
    command = "import os; from toolkit.cli import main; main(['-q', 'targets']); print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    assert _env_after(command) == "''", "the command itself runs on the CPU"


def test_the_wheel_ships_the_target_profiles(tmp_path):  # about 8 s (pip fetches setuptools into its build env)
    source = tmp_path / "src"  # a copy: building in the work tree would leave build/ and stale files behind
    shutil.copytree(ROOT / "toolkit", source / "toolkit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("edgesmith-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"toolkit/profiles/{path.name}" for path in targets_dir().glob("*.toml")}
    assert {f"toolkit/profiles/{name}.toml" for name in BUILT_IN} <= shipped <= names
    assert "toolkit/cli.py" in names and not any(name.startswith("tests/") for name in names)
