"""The microcontroller check: fit against the board, TFLM kernels, Vela, and the static arena plan."""
from __future__ import annotations

import pytest

from toolkit.checks import check_artifact
from toolkit.checks.arena import greedy_peak, plan_file
from toolkit.targets import load_target

tflite_micro = pytest.importorskip("tflite_micro", reason="the mcu extra (tflite-micro) is not installed")


def test_small_model_fits_and_a_wide_activation_misses_the_m4_board_by_its_excess(small_cnn, wide_activations):
    target = load_target("mcu-cortex-m4")
    fitting = check_artifact(small_cnn, target)
    assert fitting.memory["fits"] and not fitting.blockers, fitting.format_text()
    assert fitting.memory["flash_needed_bytes"] == small_cnn.stat().st_size

    report = check_artifact(wide_activations, target)
    memory = report.memory
    assert not memory["fits"] and not report.compatible
    assert memory["peak_activation_bytes"] >= 128 * 128 * 16  # the conv's int8 output alone
    excess = memory["ram_needed_bytes"] - memory["ram_budget_bytes"]
    assert excess > 0 and f"misses by {excess:,} B" in report.blockers[-1]
    assert "does NOT fit" in report.format_text()
    assert check_artifact(wide_activations, load_target("mcu-cortex-m7")).memory["fits"]  # 512 KB arena bank


def test_a_model_larger_than_the_flash_budget_misses_flash(small_cnn, tmp_path):
    text = load_target("mcu-cortex-m4").source.read_text()
    text = text.replace('name = "mcu-cortex-m4"', 'name = "tiny-flash"').replace("flash_bytes = 1_048_576", "flash_bytes = 1_024")
    profile = tmp_path / "tiny-flash.toml"
    profile.write_text(text.replace("reserved_flash_bytes = 196_608", "reserved_flash_bytes = 0"))
    report = check_artifact(small_cnn, load_target(str(profile)))
    excess = small_cnn.stat().st_size - 1024
    assert not report.memory["fits"] and f"flash for the model, 1,024 B available (misses by {excess:,} B)" in report.blockers[-1]


def test_an_op_without_a_tflm_kernel_is_named_and_runs_nowhere(gelu_model):
    from toolkit.checks.tflm_ops import tflm_builtin_ops

    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= tflm_builtin_ops() and "GELU" not in tflm_builtin_ops()
    report = check_artifact(gelu_model, load_target("mcu-cortex-m4"))
    assert not report.compatible and "TensorFlow Lite Micro has no kernel for GELU" in report.blockers
    assert [op.runs_on for op in report.ops if op.op == "GELU"] == ["none"]
    assert any("op resolver of tflite-micro" in note for note in report.notes)


def test_cmsis_nn_ops_and_reference_kernel_fallbacks_are_told_apart(small_cnn):
    report = check_artifact(small_cnn, load_target("mcu-cortex-m7"))
    places = {op.op: op.runs_on for op in report.ops}
    assert places["CONV_2D"] == places["FULLY_CONNECTED"] == "accelerator"  # CMSIS-NN kernels
    assert places["RESHAPE"] == "cpu" and report.fallback == "TFLM reference kernels"


def test_static_plan_equals_tflm_planned_head_and_estimates_the_whole_arena(small_cnn, wide_activations):
    from toolkit.benchmark.tflm import TFLMRunner, recorded_arena

    for model in (small_cnn, wide_activations):
        plan, recorded = plan_file(model), recorded_arena(TFLMRunner(model))
        assert plan.peak_activation_bytes == recorded["head"]
        assert 0.9 <= plan.arena_bytes / recorded["total"] <= 1.1


def test_greedy_plan_reuses_memory_of_tensors_no_longer_alive():
    # a [0,1] and c [2,3] never live together: c takes a's place; b sits above a
    assert greedy_peak([(100, 0, 1), (100, 1, 2), (100, 2, 3)]) == 200
    assert greedy_peak([(64, 0, 3), (32, 1, 1), (32, 2, 2)]) == 96  # the two small ones share a slot
    assert greedy_peak([]) == 0


def test_vela_maps_the_model_and_its_numbers_reach_the_report(small_cnn):
    from toolkit.checks import compiler_path

    if compiler_path("vela") is None:
        pytest.skip("the mcu extra (ethos-u-vela) is not installed")
    report = check_artifact(small_cnn, load_target("ethos-u55-128"))
    compiled = report.compile
    assert compiled["status"] == "compiled" and compiled["accelerator_config"] == "ethos-u55-128"
    assert compiled["ops_on_accelerator"] > 0 and compiled["ops_on_cpu"] == 0 and report.compatible
    assert compiled["inference_time_ms"] > 0 and compiled["cycles_total"] > 0 and compiled["output"] is None
    assert report.memory["ram_needed_bytes"] >= compiled["memory_used"]["sram"] > 0


def test_missing_tools_are_skipped_and_said(small_cnn, monkeypatch):
    import toolkit.benchmark.tflm as tflm
    import toolkit.checks as checks

    monkeypatch.setattr(tflm, "available", lambda: False)
    monkeypatch.setattr(checks, "compiler_path", lambda name: None)
    report = check_artifact(small_cnn, load_target("ethos-u55-128"))
    assert report.compile["status"] == "skipped" and "not found" in report.compile["reason"]
    assert any("op check skipped: tflite-micro is not installed" in note for note in report.notes)
    assert any(note.startswith("vela skipped") for note in report.notes)
    assert report.memory["fits"]  # the static plan still answers
