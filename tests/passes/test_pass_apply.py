"""Every registered pass on a tiny trained CNN: it works, and the baseline is never touched."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.passes import (
    PASSES,
    PassNotApplicable,
    apply_chain,
    load_variant_model,
    parse_chain,
    parse_step,
    save_variant_model,
)
from toolkit.passes.context import unwrap


def example_step(name: str):
    """The pass's documented example (distill's example reused for its scratch control)."""
    return parse_step(PASSES[name].params.EXAMPLE.split(" or ")[0].replace("distill", name, 1))


@pytest.mark.parametrize("name", sorted(PASSES))
def test_pass_returns_a_working_model_and_leaves_the_baseline_alone(name, teacher, make_context, small_digits):
    before = [weight.copy() for weight in teacher.get_weights()]
    result = apply_chain(teacher, (example_step(name),), make_context(train_epochs=8))

    assert all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights()))
    shared = {id(layer) for layer in teacher.layers} & {id(unwrap(layer)) for layer in result.model.layers}
    assert not shared, "the pass reused the baseline's layer objects"
    probabilities = result.model.predict(small_digits.x_val, verbose=0)
    assert probabilities.shape == (len(small_digits.x_val), 10)
    measured = float((probabilities.argmax(axis=1) == small_digits.y_val).mean())
    assert result.info["steps"][0]["val_accuracy"] == pytest.approx(measured, abs=1e-4)  # the report is honest
    held_out = result.model.predict(small_digits.x_test, verbose=0).argmax(axis=1)
    assert (held_out == small_digits.y_test).mean() > 0.5  # and the model works on data no pass has seen
    assert result.is_qat == (name == "qat")
    assert 0 < result.params <= teacher.count_params() or name in ("distill", "scratch")


def test_prune_reaches_the_target_sparsity_and_keeps_accuracy(teacher, make_context, small_digits):
    from toolkit.passes.context import accuracy

    result = apply_chain(teacher, parse_chain(["prune:0.5"]), make_context())
    assert result.info["sparsity"] == pytest.approx({"conv_a": 0.5, "conv_b": 0.5, "hidden": 0.5, "logits": 0.5}, abs=0.02)
    baseline = accuracy(teacher, small_digits.x_test, small_digits.y_test)
    assert accuracy(result.model, small_digits.x_test, small_digits.y_test) >= baseline - 0.05


def test_prune_two_of_four_leaves_too_narrow_layers_dense(teacher, make_context):
    lines = []
    result = apply_chain(teacher, parse_chain(["prune:2:4"]), make_context(log=lines.append))
    assert result.info["sparsity"]["conv_a"] == 0.0  # one input channel: no 2:4 possible
    assert all(result.info["sparsity"][name] == 0.5 for name in ("conv_b", "hidden", "logits"))
    assert any("left dense" in line and "conv_a" in line for line in lines)


def test_cluster_limits_distinct_values_and_keeps_zeros_after_prune(teacher, make_context):
    result = apply_chain(teacher, parse_chain(["prune:0.5", "cluster:8"]), make_context())
    assert max(result.info["unique_weights"].values()) <= 8
    assert min(result.info["sparsity"].values()) >= 0.45


def test_qat_after_prune_keeps_the_zeros(teacher, make_context):
    lines = []
    result = apply_chain(teacher, parse_chain(["prune:0.8", "qat"]), make_context(log=lines.append))
    assert any("PrunePreserve" in line for line in lines)
    assert min(result.info["sparsity"].values()) >= 0.78


def _model_with(layer_factory):
    from toolkit._tf import keras

    layers = keras().layers
    inputs = layers.Input((8, 8, 1))
    x = layers.Flatten()(inputs)
    x = layer_factory()(x)
    x = layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras().Model(inputs, x)


def _custom_gain():
    from toolkit._tf import keras

    class Gain(keras().layers.Layer):
        def build(self, input_shape):
            self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")

        def call(self, inputs):
            return inputs * self.gain

    return Gain(name="custom_gain")


def _lambda():
    from toolkit._tf import keras

    return keras().layers.Lambda(lambda t: t * 2.0, name="double_it")


@pytest.mark.parametrize(
    "chain, factory, layer",
    [
        (["qat"], _lambda, "'double_it' (Lambda)"),
        (["qat"], _custom_gain, "'custom_gain' (Gain)"),
        (["prune:0.5"], _custom_gain, "'custom_gain' (Gain)"),
        (["cluster:8"], _custom_gain, "'custom_gain' (Gain)"),
    ],
)
def test_unsupported_layer_names_the_layer_and_the_pass(chain, factory, layer, make_context):
    model = _model_with(factory)
    with pytest.raises(PassNotApplicable) as error:
        apply_chain(model, parse_chain(chain), make_context(epochs=1, teacher=model))
    assert str(error.value).startswith(f"{parse_chain(chain)[0].name} cannot ")
    assert layer in str(error.value)


def test_prune_accepts_weightless_lambda_layers(make_context):
    model = _model_with(_lambda)
    result = apply_chain(model, parse_chain(["prune:0.5"]), make_context(epochs=1, teacher=model))
    assert result.info["sparsity"]["classifier"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("chain", [["prune:0.5"], ["qat"], ["prune:0.5", "cluster:8", "qat"]])
def test_saved_variant_reloads_to_the_same_predictions(chain, teacher, make_context, small_digits, tmp_path):
    steps = parse_chain(chain)
    result = apply_chain(teacher, steps, make_context(epochs=1))
    written = save_variant_model(result, tmp_path / "model.h5")
    assert all(path.is_file() for path in written) and len(written) == (2 if result.is_qat else 1)
    reloaded = load_variant_model(tmp_path / "model.h5", steps)
    expected = result.model.predict(small_digits.x_val, verbose=0)
    np.testing.assert_allclose(reloaded.predict(small_digits.x_val, verbose=0), expected, atol=1e-6)
