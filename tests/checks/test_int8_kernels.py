"""int8 ONNX on every x86 CPU: the saturation check, 7-bit weights and the finding.

A hand-made QDQ convolution with full-range weights on full-range inputs is the worst case for
u8×s8 kernels that add pairs of products in 16 bits (255 × 127 × 2 > 32767): on a CPU without
VNNI the fused kernel must disagree with exact math by many output steps, on every other CPU it
must not, and with 7-bit weights it must agree everywhere. "Agree" is within one output step:
the fused kernel rounds its exact int32 sum to the output scale, the unfused path rounds a
float32 sum, and a sum at a rounding tie can land one step apart (seen on a Zen 4 with VNNI:
24 of 8192 outputs). Each branch asserts what holds on the CPU at hand.
"""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.checks.int8_kernels import kernel_agreement
from toolkit.converters.onnx_graph import reduce_weight_range
from toolkit.cpu_features import cpu_features, describe
from toolkit.report.flags import findings

CHANNELS = 16
OUTPUT_STEP = 2.0  # y_scale of _saturating_conv: one step of its int8 output


def _saturating_conv(path, weight_q: int = 127):
    """input -> Q/DQ (int8) -> Conv with DQ(int8 weights, all `weight_q`) -> Q/DQ -> output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    constants = {
        "x_scale": np.array(1 / 127, np.float32), "x_zero": np.array(0, np.int8),
        "w_q": np.full((8, CHANNELS, 3, 3), weight_q, np.int8),
        "w_scale": np.array(0.01, np.float32), "w_zero": np.array(0, np.int8),
        "y_scale": np.array(OUTPUT_STEP, np.float32), "y_zero": np.array(0, np.int8),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zero"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_f"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_f"]),
        helper.make_node("Conv", ["x_f", "w_f"], ["y_f"], pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["y_f", "y_scale", "y_zero"], ["y_q"]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "saturating_conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, CHANNELS, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 8, 4, 4])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _save(model, path):
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture()
def inputs() -> np.ndarray:
    # every input at the top of its range, plus random ones: the worst case and a typical case
    rng = np.random.default_rng(0)
    return np.concatenate([np.ones((4, CHANNELS, 4, 4)), rng.uniform(0, 1, (60, CHANNELS, 4, 4))]).astype(np.float32)


def test_full_range_weights_saturate_exactly_where_the_cpu_lacks_int8_dot_product(tmp_path, inputs):
    path = _save(_saturating_conv(tmp_path), tmp_path / "full.onnx")
    check = kernel_agreement(path, inputs)
    if cpu_features()["u8s8_saturation"]:
        assert check["max_abs_diff"] > 5 * OUTPUT_STEP, f"expected 16-bit saturation on {describe(cpu_features())}"
    else:
        assert check["max_abs_diff"] <= OUTPUT_STEP, f"no saturation expected on {describe(cpu_features())}"
    assert check["samples"] == len(inputs)
    assert check["max_diff_steps"] == pytest.approx(check["max_abs_diff"] / OUTPUT_STEP, abs=1e-3)


def test_seven_bit_weights_never_saturate_on_any_cpu(tmp_path, inputs):
    model = _saturating_conv(tmp_path)
    assert reduce_weight_range(model) == 1
    from onnx import numpy_helper

    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    assert np.abs(weights["w_q/7bit"].astype(int)).max() == 64 and weights["w_scale/7bit"] == np.float32(0.02)
    assert "w_q" not in weights  # the 8-bit copy is gone, not left behind unused
    check = kernel_agreement(_save(model, tmp_path / "seven.onnx"), inputs)
    assert check["max_abs_diff"] <= OUTPUT_STEP and check["samples"] == len(inputs)


def test_weights_already_in_seven_bits_are_left_alone(tmp_path):
    model = _saturating_conv(tmp_path, weight_q=60)
    assert reduce_weight_range(model) == 0


def _record(top1: float, max_diff_steps: float | None = 95.0) -> dict:
    return {"variant": "qat", "target": "onnx-cpu", "format": "onnx", "precision": "int8", "path": "onnx-cpu/qat__int8.onnx",
            "accuracy": 0.97, "accuracy_drop_pp": 0.0, "chain": ["qat"], "latency_ms": {"p50": 0.02},
            "size_bytes": 20_000, "gzip_bytes": 15_000,
            "int8_kernels": {"top1": top1, "max_abs_diff": 1.9, "max_diff_steps": max_diff_steps, "samples": 397}}


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        ("fpu sse2 avx2 fma", "x86_64", "set reduce_range = true"),
        ("fpu avx2 avx512f avx512_vnni", "x86_64", "not the known AVX2 saturation"),
        ("fp asimd asimddp", "aarch64", "not the known AVX2 saturation"),
    ],
    ids=["x86-no-vnni", "x86-vnni", "arm-dotprod"],
)
def test_the_finding_names_cause_and_remedy_for_the_cpu_that_measured_it(flags, machine, expected):
    cpu = cpu_features(f"model name\t: Test CPU\nflags\t\t: {flags}\nFeatures\t: {flags}\n", machine)
    sentences = [s for s in findings([_record(0.922)], {"cpu": cpu}) if "fused int8 kernels" in s]
    assert len(sentences) == 1 and expected in sentences[0] and "92.2% of 397" in sentences[0]
    assert "onnx-cpu/qat__int8.onnx" in sentences[0]
    assert not [s for s in findings([_record(0.995)], {"cpu": cpu}) if "fused int8 kernels" in s]
    tie = _record(0.0, max_diff_steps=1.0)  # a model near chance: near-equal scores, a rounding tie broken otherwise
    assert not [s for s in findings([tie], {"cpu": cpu}) if "fused int8 kernels" in s]
    assert [s for s in findings([_record(0.922, max_diff_steps=None)], {"cpu": cpu}) if "fused int8 kernels" in s]


def test_cpu_features_read_x86_and_arm_flags():
    x86 = cpu_features("model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n", "x86_64")
    assert x86["features"] == ["avx2", "fma"] and x86["u8s8_saturation"] and not x86["int8_dot_product"]
    assert "avx512_vnni" in x86["missing"] and describe(x86).startswith("AMD EPYC 7B13 (x86_64: avx2 fma;")
    vnni = cpu_features("model name\t: Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n", "x86_64")
    assert vnni["int8_dot_product"] and not vnni["u8s8_saturation"]
    pi = cpu_features("processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n"
                      "Model\t\t: Raspberry Pi 5 Model B\n", "aarch64")
    assert pi["features"] == ["asimd", "asimddp"] and pi["int8_dot_product"] and not pi["u8s8_saturation"]
    assert pi["model"] == "Raspberry Pi 5 Model B"
    assert cpu_features()["arch"]  # this machine's own cpuinfo parses
