"""Distillation: the loss, the student it builds, and that the teacher really steers training."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.passes import apply_chain, parse_chain, parse_step
from toolkit.passes.distill import _logits_model, build_student, distillation_loss


def _softmax(z, t=1.0):
    e = np.exp(z / t - (z / t).max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_loss_matches_the_formula():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    t, alpha = 3.0, 0.25
    ce = -np.log(_softmax(student)[np.arange(6), labels])
    p, q = _softmax(teacher, t), _softmax(student, t)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1)
    expected = np.mean(alpha * ce + (1 - alpha) * t**2 * kl)
    assert float(distillation_loss(labels, student, teacher, t, alpha)) == pytest.approx(expected, rel=1e-5)
    assert float(distillation_loss(labels, student, None, t, alpha)) == pytest.approx(ce.mean(), rel=1e-5)
    assert float(distillation_loss(labels, teacher, teacher, t, 0.0)) == pytest.approx(0.0, abs=1e-6)


def test_logits_are_read_before_the_softmax(teacher, small_digits):
    from toolkit._tf import keras

    x = small_digits.x_val[:8]
    exact = keras().Model(teacher.inputs, teacher.get_layer("logits").output)(x).numpy()
    np.testing.assert_allclose(_logits_model(teacher)(x).numpy(), exact, rtol=1e-5, atol=1e-5)

    layers = keras().layers
    inputs = layers.Input((8, 8, 1))
    fused = keras().Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(inputs)))
    recovered = _softmax(_logits_model(fused)(x).numpy())
    np.testing.assert_allclose(recovered, fused(x).numpy(), rtol=1e-4, atol=1e-6)


def test_default_student_is_a_narrower_copy_of_a_zoo_teacher(make_context):
    from toolkit.models import build

    zoo_teacher = build("cnn", (8, 8, 1), 10)
    student = build_student(parse_step("distill").params, make_context(teacher=zoo_teacher))
    assert student.name.startswith("cnn") and student.count_params() < zoo_teacher.count_params() / 2


def test_user_teacher_gets_its_own_graph_narrower(make_context, teacher):
    student = build_student(parse_step("distill:width=0.25").params, make_context())
    assert [type(layer) for layer in student.layers] == [type(layer) for layer in teacher.layers]
    assert student.count_params() < teacher.count_params() / 2


def test_distill_and_scratch_start_from_the_same_student(make_context):
    params = parse_step("distill:student=mlp").params
    first, second = build_student(params, make_context()), build_student(params, make_context())
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


def _shifted_teacher(teacher):
    """The teacher, but predicting class (c + 1) % 10 wherever it predicted c."""
    from toolkit.passes.context import clone_with_weights

    shifted = clone_with_weights(teacher)
    kernel, bias = shifted.get_layer("logits").get_weights()
    shifted.get_layer("logits").set_weights([np.roll(kernel, 1, axis=1), np.roll(bias, 1)])
    return shifted


def test_the_student_follows_the_teacher_and_the_control_follows_the_labels(teacher, make_context, small_digits):
    """With soft labels only (alpha=0) the student learns even a teacher's systematic mistake."""
    liar = _shifted_teacher(teacher)
    ctx = make_context(teacher=liar, train_epochs=10, learning_rate=5e-3)
    distilled = apply_chain(liar, parse_chain(["distill:student=mlp,alpha=0"]), ctx).model
    control = apply_chain(liar, parse_chain(["scratch:student=mlp,alpha=0"]), ctx).model

    x, y = small_digits.x_val, small_digits.y_val
    liar_top1 = liar.predict(x, verbose=0).argmax(axis=1)
    distilled_top1 = distilled.predict(x, verbose=0).argmax(axis=1)
    control_top1 = control.predict(x, verbose=0).argmax(axis=1)
    assert (distilled_top1 == liar_top1).mean() > 0.7
    assert (control_top1 == y).mean() > 0.7
    assert (control_top1 == liar_top1).mean() < 0.2
