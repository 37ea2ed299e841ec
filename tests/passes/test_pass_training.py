"""How the passes train, as the README states it: QAT nudges at the smaller fine-tune learning
rate, pruning re-learns at the training rate, fine-tuning runs at least 400 optimizer steps, and
the `dscnn` zoo model is depthwise-separable."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from toolkit.passes import PASSES, parse_step


def _learning_rate(model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def test_qat_fine_tunes_at_the_smaller_rate_and_pruning_at_the_training_rate(teacher, make_context):
    """QAT returns the model it fine-tuned (compiled in place); pruning strips its wrappers, so its
    fine-tuning (`gentle=False`, as prune and cluster call it) is checked on a clone."""
    from toolkit._tf import keras
    from toolkit.passes.context import fine_tune

    ctx = make_context(epochs=1, learning_rate=2e-3, finetune_learning_rate=1e-4)
    assert _learning_rate(PASSES["qat"].apply(teacher, parse_step("qat").params, ctx)) == pytest.approx(1e-4)
    clone = keras().models.clone_model(teacher)
    fine_tune(clone, ctx)
    assert _learning_rate(clone) == pytest.approx(2e-3)


@pytest.mark.parametrize("samples, batch, finetune_epochs, expected", [
    (480, 32, 2, math.ceil(400 / 15)),  # 15 steps per epoch: 27 epochs reach 400 steps
    (480, 32, 40, 40),  # already past 400 steps: the setting stands
    (50_000, 32, 1, 1),  # one epoch is 1,563 steps
])
def test_fine_tuning_runs_at_least_400_optimizer_steps(teacher, samples, batch, finetune_epochs, expected):
    from toolkit import variant_stage

    x = np.zeros((samples, 1), np.float32)
    experiment = SimpleNamespace(batch_size=batch, finetune_epochs=finetune_epochs, epochs=3, learning_rate=1e-3,
                                 seed=0, finetune_learning_rate=1e-4)
    data = SimpleNamespace(x_train=x, y_train=x[:, 0], x_val=x[:2], y_val=x[:2, 0], num_classes=10, input_shape=(1,),
                           task="classification")
    state = SimpleNamespace(experiment=experiment, data=data, log=lambda line: None)
    ctx = variant_stage._pass_context(state, teacher)
    assert ctx.epochs == expected and variant_stage.MIN_FINETUNE_STEPS == 400
    assert ctx.epochs * math.ceil(samples / batch) >= 400


def test_dscnn_is_built_from_depthwise_separable_blocks():
    from toolkit._tf import keras
    from toolkit.models import build

    model = build("dscnn", (32, 32, 3), 5)
    layers = keras().layers
    depthwise = [layer for layer in model.layers if isinstance(layer, layers.DepthwiseConv2D)]
    pointwise = [layer for layer in model.layers if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D)
                 and layer.kernel_size == (1, 1)]
    assert len(depthwise) == len(pointwise) == 2
    assert model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0).shape == (2, 5)


@pytest.mark.parametrize("preserving", [True, False], ids=["cluster-preserving", "plain-qat"])
def test_qat_after_clustering_keeps_the_clusters_in_the_int8_file(preserving, teacher, make_context, small_digits,
                                                                   monkeypatch, tmp_path):
    """cluster:8 + qat uses tfmot's cluster-preserving scheme, so every output channel of every
    int8 kernel still holds at most 8 values; the plain scheme (patched in) loses them, which is
    what this test would catch if the chain stopped choosing the preserving scheme."""
    from toolkit.converters.tflite import convert_to_file
    from toolkit.passes import apply_chain, parse_chain
    from toolkit.passes import qat
    from toolkit.passes.sparsity import tflite_weights

    if not preserving:
        monkeypatch.setattr(qat, "_scheme", lambda applied: qat.tfmot().quantization.keras.default_8bit.Default8BitQuantizeScheme())
    result = apply_chain(teacher, parse_chain(["cluster:8", "qat"]), make_context(epochs=2, finetune_learning_rate=1e-3))
    path = convert_to_file(result.model, tmp_path / "model.tflite", "int8", calibration_x=small_digits.x_train[:64])
    most = max(int(np.unique(row).size) for weight in tflite_weights(path.read_bytes())
               for row in weight.values.reshape(weight.values.shape[0], -1))
    assert (most <= 8) is preserving, f"up to {most} distinct int8 values in one output channel"
