"""Distillation students for a user's own model: its graph at a smaller width, sized by params."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import EdgesmithError
from toolkit.models import count_params
from toolkit.passes import apply_chain, control_chain, parse_chain, parse_step
from toolkit.passes.distill import build_student
from toolkit.passes.student import TOLERANCE, choose_student, scaled_count

SHAPE = (32, 32, 3)


def _residual_cnn(k):
    """A user's functional CNN (tf_keras or Keras 3 `k`): stem, a BatchNorm residual block, head."""
    layers = k.layers
    inputs = k.Input(SHAPE)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    y = layers.Conv2D(16, 3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(16, 3, padding="same")(y)
    x = layers.Add()([x, y])
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(24, activation="relu")(x)
    return k.Model(inputs, layers.Dense(3, activation="softmax")(x), name="user_cnn")


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def _assert_same_family_at(student, teacher, fraction):
    assert _kinds(student) == _kinds(teacher)
    assert student.output_shape == teacher.output_shape
    assert count_params(student) / count_params(teacher) == pytest.approx(fraction, rel=TOLERANCE)


def test_scaled_counts_are_deterministic_and_keep_multiples_of_eight():
    assert scaled_count(96, 0.5) == 48 and scaled_count(128, 0.3) == 40 and scaled_count(40, 0.3) == 12
    assert scaled_count(16, 0.3) == 5 and scaled_count(24, 0.25) == 6
    assert scaled_count(3, 0.1) == 1 and scaled_count(96, 1.0) == 96


def test_tf_keras_residual_cnn_gets_its_own_graph_at_a_quarter_of_the_params():
    from toolkit._tf import keras

    teacher = _residual_cnn(keras())
    student = choose_student(teacher, SHAPE, 3, None, 0.5, 0.25)
    _assert_same_family_at(student.model, teacher, 0.25)
    assert "own graph" in student.how
    adds = [layer for layer in student.model.layers if type(layer).__name__ == "Add"]
    assert all(len({tuple(t.shape) for t in layer.input}) == 1 for layer in adds)


def test_keras3_residual_cnn_is_translated_then_scaled():
    keras3 = pytest.importorskip("keras")
    from toolkit.keras3 import to_tf_keras

    sample = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    teacher = to_tf_keras(_residual_cnn(keras3), sample)
    student = choose_student(teacher, SHAPE, 3, None, 0.5, 0.25)
    _assert_same_family_at(student.model, teacher, 0.25)


def test_mobilenet_v2_student_is_a_narrower_mobilenet_v2():
    from toolkit._tf import keras

    teacher = keras().applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None, classes=3)
    student = choose_student(teacher, (96, 96, 3), 3, None, 0.5, 0.25)
    _assert_same_family_at(student.model, teacher, 0.25)


def _user_context(make_context, teacher, **overrides):
    return make_context(teacher=teacher, input_shape=SHAPE, num_classes=3, **overrides)


def test_default_chains_never_give_a_student_as_large_as_the_teacher(make_context):
    from toolkit._tf import keras

    teacher = _residual_cnn(keras())
    for step in ("distill", "distill:params=0.5", "scratch"):
        notes = {}
        build_student(parse_step(step).params, _user_context(make_context, teacher, notes=notes))
        assert 0 < notes["student_params"] < notes["teacher_params"] == count_params(teacher)
        assert notes["params_ratio"] < 1
    with pytest.raises(EdgesmithError, match="not be a compression"):
        build_student(parse_step("distill:width=2").params, _user_context(make_context, teacher))


def test_an_explicit_oversize_student_is_kept_and_measured(make_context):
    from toolkit._tf import keras

    teacher, notes = _residual_cnn(keras()), {}
    student = build_student(parse_step("distill:student=mlp").params, _user_context(make_context, teacher, notes=notes))
    assert student.name.startswith("mlp") and notes["params_ratio"] > 1
    assert notes["student_params"] == count_params(student)


def test_distill_and_scratch_get_the_same_sized_student(make_context):
    from toolkit._tf import keras

    teacher = _residual_cnn(keras())
    steps = parse_chain(["distill:params=0.25"])
    first, second = (build_student(chain[0].params, _user_context(make_context, teacher))
                     for chain in (steps, control_chain(steps)))
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


def _with_lambda(units: int):
    from toolkit._tf import keras

    layers = keras().layers
    inputs = keras().Input((8, 8, 1))
    x = layers.Conv2D(units, 3, activation="relu")(inputs) if units > 4 else layers.Flatten()(inputs)
    x = layers.Lambda(lambda t: t * 2.0, name="doubler")(layers.Dense(units)(x) if units <= 4 else x)
    x = layers.Flatten()(x)
    return keras().Model(inputs, layers.Dense(10, activation="softmax")(x), name="custom")


def test_an_unscalable_graph_falls_back_to_the_zoo_family_or_names_the_layer():
    student = choose_student(_with_lambda(32), (8, 8, 1), 10, None, 0.5, 0.25)
    assert student.model.name.startswith("cnn") and "doubler" in student.how
    with pytest.raises(EdgesmithError, match="layer 'doubler' \\(Lambda\\)"):
        choose_student(_with_lambda(4), (8, 8, 1), 10, None, 0.5, 0.25)


def test_distill_records_the_student_and_its_size(make_context, small_digits):
    from toolkit._tf import keras

    layers = keras().layers
    inputs = keras().Input((8, 8, 1))
    x = layers.Conv2D(16, 3, activation="relu")(inputs)
    x = layers.Flatten()(layers.BatchNormalization()(x))
    teacher = keras().Model(inputs, layers.Dense(10, activation="softmax")(x), name="user_small")
    result = apply_chain(teacher, parse_chain(["distill:params=0.25"]), make_context(teacher=teacher, train_epochs=1))
    step = result.info["steps"][0]
    assert step["student_params"] == result.params and step["teacher_params"] == count_params(teacher)
    assert step["params_ratio"] == pytest.approx(0.25, rel=TOLERANCE) and "own graph" in step["student"]


def test_a_zoo_teacher_gets_the_same_zoo_model_sized_by_params():
    from toolkit.models import build

    teacher = build("cnn", (28, 28, 1), 10)
    student = choose_student(teacher, (28, 28, 1), 10, None, 0.5, 0.25)
    assert student.model.name.startswith("cnn_w") and "(zoo)" in student.how
    _assert_same_family_at(student.model, teacher, 0.25)
