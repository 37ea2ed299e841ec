"""Running MCU artifacts here: TFLM vs LiteRT, the firmware C source, estimated latency, and a
pipeline run whose records carry all of it."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from toolkit.errors import EdgesmithError
from toolkit.targets import load_target

pytest.importorskip("tflite_micro", reason="the mcu extra (tflite-micro) is not installed")


def test_tflm_output_is_litert_output_within_one_quantization_step(small_cnn, samples):
    """Every op's int8 output, and the model's, within one step of LiteRT's reference kernels."""
    from toolkit.benchmark.tflm import interpreter_facts

    facts = interpreter_facts(small_cnn, samples)
    versus_reference = facts["int8_crosscheck"]["reference_kernels"]
    assert versus_reference["max_op_diff_steps"] <= 1 and versus_reference["max_abs_diff_steps"] <= 1
    assert versus_reference["top1_agreement"] == 1.0 and versus_reference["op_samples"] == len(samples)
    assert facts["int8_crosscheck"]["default_kernels"]["max_abs_diff_steps"] >= 0  # reported, whatever it is
    assert facts["arena_bytes"] == facts["arena_recorded"]["head_bytes"] + facts["arena_recorded"]["tail_bytes"]


def test_a_model_tflm_cannot_load_is_scored_by_litert_and_says_so(gelu_model, samples):
    from toolkit.benchmark.runners import LiteRTRunner
    from toolkit.benchmark.tflm import interpreter_facts
    from toolkit.runtimes import runtime_named

    assert isinstance(runtime_named("tflm").open_runner(gelu_model), LiteRTRunner)
    assert "GELU" in interpreter_facts(gelu_model, samples)["notes"][0]


def test_c_source_compiles_into_an_array_as_long_as_the_model(small_cnn, tmp_path):
    from toolkit.converters.c_source import symbol_for, write_c_source

    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler on PATH (Debian: apt-get install g++)")
    source, header = write_c_source(small_cnn, tmp_path)
    assert f'#include "{header.name}"' in source.read_text() and "alignas(16)" in source.read_text()
    subprocess.run([compiler, "-std=c++11", "-Wall", "-Werror", "-c", str(source), "-o", str(tmp_path / "model.o")],
                   check=True)
    symbols = subprocess.run(["nm", "-S", "--defined-only", str(tmp_path / "model.o")],
                             capture_output=True, text=True, check=True).stdout
    sizes = {line.split()[-1]: int(line.split()[1], 16) for line in symbols.splitlines() if len(line.split()) == 4}
    assert sizes[symbol_for(small_cnn)] == small_cnn.stat().st_size


def test_cortex_m_latency_is_macs_times_cycles_per_mac_over_the_clock_and_labelled(small_cnn):
    from toolkit.checks import check_artifact
    from toolkit.runtimes import runtime_named

    target = load_target("mcu-cortex-m4")
    report = check_artifact(small_cnn, target).to_dict()
    timing = runtime_named("tflm").estimated_timing(target, report)
    options = target.options
    cycles = sum((op["macs"] or 0) * (options["cycles_per_mac"] if op["runs_on"] == "accelerator"
                                      else options["reference_cycles_per_mac"]) for op in report["ops"])
    assert timing["latency_kind"] == timing["latency_method"]["kind"] == "estimated"
    assert timing["latency_ms"]["p50"] == pytest.approx(cycles / options["clock_hz"] * 1000)
    assert timing["latency_ms"]["ci95_p50"] is None and timing["peak_memory_mb"] is None


@pytest.mark.slow
def test_default_run_records_carry_fit_memory_npu_split_and_estimates(tmp_path, digits):
    import toolkit as edgesmith
    from toolkit.checks import compiler_path

    data = {"x_train": digits.x_train, "y_train": digits.y_train, "x_test": digits.x_test, "y_test": digits.y_test}
    result = edgesmith.run({"model": "cnn", "epochs": 2, "variants": [], "output": str(tmp_path),
                            "targets": ["cpu", "mcu-cortex-m4", "ethos-u55-128"], "bench_runs": 50}, data=data)
    cpu, m4, npu = (result.record("baseline", target, "int8") for target in ("cpu", "mcu-cortex-m4", "ethos-u55-128"))
    assert cpu.latency_kind == "measured" and cpu.peak_activation_bytes > 0
    for record in (m4, npu):
        assert record.latency_kind == "estimated" and not record.latency_on_device and record.fits
        assert record.peak_activation_bytes == cpu.peak_activation_bytes == record.arena_recorded["head_bytes"]
        assert record.arena_bytes > 0 and record.int8_crosscheck["reference_kernels"]["max_op_diff_steps"] <= 1
    assert m4.latency_ms["p50"] > 0 and (result.run_dir / "mcu-cortex-m4" / "baseline__int8.cc").is_file()
    assert result.best["mcu-cortex-m4"] == m4.path
    if compiler_path("vela"):
        assert npu.npu["ops_on_accelerator"] > 0 and npu.npu["ops_on_cpu"] == 0
        assert npu.latency_ms["p50"] == pytest.approx(npu.npu["inference_time_ms"], rel=1e-6)
        assert (result.run_dir / "ethos-u55-128" / npu.npu["compiled_file"]).is_file()
        assert (result.run_dir / "ethos-u55-128" / "baseline__int8_vela.cc").is_file()
    table = (result.run_dir / "report.md").read_text()
    assert " est." in table and "estimated, never measured" in (result.run_dir / "report.html").read_text()


@pytest.mark.slow
def test_firmware_files_reach_every_target_folder_and_best_from_a_process_pool(tmp_path, digits):
    """The C source and Vela's files are part of an export: a variant built in a worker process
    sends them back, a second board with the same bytes gets them too, and best/ holds them."""
    import toolkit as edgesmith
    from toolkit.checks import compiler_path

    data = {"x_train": digits.x_train, "y_train": digits.y_train, "x_test": digits.x_test, "y_test": digits.y_test}
    settings = {"model": "mlp", "epochs": 1, "finetune_epochs": 1, "variants": [["qat"]], "output": str(tmp_path),
                "targets": ["mcu-cortex-m4", "mcu-cortex-m7", "ethos-u55-128"], "bench_runs": 10,
                "executor": "processes", "build_workers": 1}
    result = edgesmith.run(settings, data=data)
    vela = bool(compiler_path("vela"))
    for variant in ("baseline", "qat"):
        for board in ("mcu-cortex-m4", "mcu-cortex-m7"):
            assert {p.name for p in (result.run_dir / board).glob(f"{variant}__int8*")} == \
                {f"{variant}__int8.tflite", f"{variant}__int8.cc", f"{variant}__int8.h"}, board
        if vela:
            assert (result.run_dir / "ethos-u55-128" / f"{variant}__int8_vela.cc").is_file()
            assert result.record(variant, "ethos-u55-128", "int8").npu["compiled_file"] == f"{variant}__int8_vela.tflite"
    stem = result.best["mcu-cortex-m7"].split("/")[1].removesuffix(".tflite")
    assert sorted(p.name for p in (result.run_dir / "best" / "mcu-cortex-m7").iterdir()) == [f"{stem}.cc", f"{stem}.h", f"{stem}.tflite"]
    if vela:
        assert any(p.name.endswith("_vela.tflite") for p in (result.run_dir / "best" / "ethos-u55-128").iterdir())
        compiled = result.run_dir / "ethos-u55-128" / "qat__int8_vela.tflite"  # the firmware's file, not Vela's input
        with pytest.raises(EdgesmithError, match="already compiled by Vela"):
            edgesmith.check(compiled, "ethos-u55-128")
        with pytest.raises(EdgesmithError, match="compiled by Vela: its ethos-u ops run only on an Ethos-U NPU"):
            edgesmith.bench(compiled, runs=10)
    (result.run_dir / "mcu-cortex-m7" / "qat__int8.cc").unlink()  # a firmware file lost: the cache notices
    edgesmith.run({**settings, "executor": "local"}, data=data)
    assert (result.run_dir / "mcu-cortex-m7" / "qat__int8.cc").is_file()


def test_the_per_op_comparison_runs_where_keeping_every_tensor_outgrows_the_plan(tmp_path):
    """Twelve 32 KiB activations: the static plan reuses two buffers, keeping all of them for the
    per-op comparison needs six times that; the arena grows instead of failing the run."""
    from toolkit._tf import keras
    from toolkit.benchmark.tflm import arena_size_for, interpreter_facts
    from toolkit.converters.tflite import convert_to_file

    k = keras()
    k.utils.set_random_seed(0)
    x = inputs = k.Input((32, 32, 8), batch_size=1)
    for _ in range(12):
        x = k.layers.Conv2D(32, 1, activation="relu")(x)
    model = k.Model(inputs, k.layers.Dense(10)(k.layers.GlobalAveragePooling2D()(x)))
    samples = np.random.default_rng(0).random((16, 32, 32, 8), dtype=np.float32)
    path = convert_to_file(model, tmp_path / "deep.tflite", "int8", calibration_x=samples, int8_io_dtype="int8",
                           fixed_batch=True)
    assert 12 * 32 * 32 * 32 > arena_size_for(path)  # what the comparison keeps does not fit the plan's arena
    facts = interpreter_facts(path, samples)
    assert facts["int8_crosscheck"]["reference_kernels"]["max_op_diff_steps"] <= 1 and "notes" not in facts
