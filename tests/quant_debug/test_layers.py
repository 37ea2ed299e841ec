"""The per-layer table's arithmetic and the fallback syntax, without TensorFlow."""
from __future__ import annotations

import math

import pytest

from toolkit.errors import EdgesmithError
from toolkit.quant_debug.fallback import FallbackPlan, parse_fallback, refusal, run_fallback
from toolkit.quant_debug.layers import LayerError, keras_layer, noise_ratio, rank, select, sqnr_db
from toolkit.targets import load_target


def _row(tensor, layer, ratio):
    return LayerError(tensor, layer, "FULLY_CONNECTED", sqnr_db(1.0, ratio), 0.3, ratio)


def test_keras_layer_is_a_path_component_of_the_tensor_name():
    names = ["dense", "dense_1", "hostile"]
    assert keras_layer("mlp/dense_1/MatMul;mlp/dense_1/Relu", names) == "dense_1"
    assert keras_layer("mlp/hostile/Relu:0", names) == "hostile"
    assert keras_layer("StatefulPartitionedCall:0", names) is None


def test_sqnr_and_noise_ratio_are_inverse():
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)
    assert noise_ratio(20.0) == pytest.approx(0.01)
    assert math.isinf(sqnr_db(1.0, 0.0)) and noise_ratio(math.inf) == 0.0


def test_rank_orders_worst_first_with_shares():
    ranked = rank([_row("a", "a", 0.01), _row("b", "b", 0.75), _row("c", None, 0.24)])
    assert [r.name for r in ranked] == ["b", "c", "a"]
    assert [round(r.share, 2) for r in ranked] == [0.75, 0.24, 0.01]


def test_select_names_layers_or_tensors_and_rejects_unknown():
    rows = [_row("t/a", "a", 0.1), _row("t2", None, 0.2)]
    assert [r.tensor for r in select(rows, ["t2", "a"])] == ["t2", "t/a"]
    with pytest.raises(EdgesmithError, match="no quantized layer is named 'zz'.*name one of: a, t2"):
        select(rows, ["zz"])


@pytest.mark.parametrize("text, plan", [
    ("auto", FallbackPlan(auto=True)),
    ("auto:2", FallbackPlan(auto=True, limit=2)),
    ("conv1, dense", FallbackPlan(auto=False, layers=("conv1", "dense"))),
])
def test_parse_fallback(text, plan):
    assert parse_fallback(text) == plan


@pytest.mark.parametrize("text", ["auto:0", "auto:x", " , "])
def test_parse_fallback_rejects(text):
    with pytest.raises(EdgesmithError, match="use auto, auto:N"):
        parse_fallback(text)


@pytest.mark.parametrize("name, refused", [
    ("cpu", False), ("onnx-cpu", False), ("edgetpu", True), ("mcu-cortex-m4", True), ("ethos-u55-128", True),
])
def test_int8_only_targets_refuse_fallback(name, refused):
    reason = refusal(load_target(name))
    assert (reason is not None) == refused
    if refused:
        assert "int8 only" in reason


def _fake_fallback(tmp_path, max_size_bytes=0, max_drop_pp=0.0):
    """Three layers; each kept float adds 100 bytes and 10 points of accuracy."""
    ranked = rank([LayerError(f"t{i}", f"layer{i}", "FC", 10.0 - i, None, 0.3 - i / 10) for i in range(3)])

    def write(path, rows):
        path.write_bytes(b"x" * (1000 + 100 * len(rows)))
        return path

    def accuracy(path):
        return 0.6 + (path.stat().st_size - 1000) / 1000

    return run_fallback(FallbackPlan(auto=True), ranked, write, accuracy, tmp_path, 0.9, max_drop_pp, "bin",
                        max_size_bytes)


def test_auto_fallback_grows_worst_first_until_within_budget(tmp_path):
    steps = _fake_fallback(tmp_path, max_drop_pp=10.0)
    assert [step.float_layers for step in steps] == [(), ("layer0",), ("layer0", "layer1")]


def test_auto_fallback_stops_before_the_size_limit(tmp_path):
    steps = _fake_fallback(tmp_path, max_size_bytes=1150)
    assert [step.float_layers for step in steps] == [(), ("layer0",)]
