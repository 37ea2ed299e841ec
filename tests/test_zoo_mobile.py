"""Mobile zoo models: settings, input-size checks, the softmax head distillation relies on."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import EdgesmithError
from toolkit.models import build, check_zoo_spec, is_zoo
from toolkit.zoo_mobile import BATCHNORM_MOMENTUM, spec_from_label


@pytest.mark.parametrize("spec, shape, max_params", [
    ("mobilenet_v2:alpha=0.35", (96, 96, 3), 450_000),
    ("mobilenet_v3_small:minimalistic=true", (64, 64, 1), 500_000),
    ("resnet8", (32, 32, 3), 80_000),
    ("resnet8", (28, 28), 80_000),
])
def test_builds_with_a_separate_softmax(spec, shape, max_params):
    model = build(spec, shape, 10)
    assert spec_from_label(model.name) == spec and model.output_shape == (None, 10)
    assert model.layers[-1].name == "probabilities" and model.layers[-2].name == "logits"
    assert model.count_params() <= max_params
    assert is_zoo(spec)
    momentums = {layer.momentum for layer in model.layers if hasattr(layer, "moving_mean")}
    assert momentums <= {BATCHNORM_MOMENTUM}


def test_width_scales_a_student():
    teacher = build("mobilenet_v2:alpha=0.35", (96, 96, 3), 4)
    student = build(spec_from_label(teacher.name), (96, 96, 3), 4, width=0.5)
    assert student.count_params() < teacher.count_params() / 2


def test_a_model_with_settings_trains():
    """Its name becomes a TensorFlow name scope, which refuses ':' and '='."""
    import numpy as np

    model = build("mobilenet_v3_small:alpha=0.75,minimalistic=true", (32, 32, 3), 3)
    assert model.name == "mobilenet_v3_small__alpha-0.75__minimalistic-true"
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(np.zeros((4, 32, 32, 3), np.float32), np.arange(4) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("spec, message", [
    ("mobilenet_v2:alpah=0.35", "did you mean 'alpha'"),
    ("mobilenet_v2:alpha=-1", "out of range"),
    ("mobilenet_v2:minimalistic=true", "applies to mobilenet_v3_small"),
    ("mobilenet_v3_small:minimalistic=maybe", "true or false"),
    ("resnet8:3", "too many arguments"),
    ("cnn:wide", "cnn takes no settings"),
])
def test_bad_settings(spec, message):
    with pytest.raises(EdgesmithError, match=message):
        check_zoo_spec(spec, (96, 96, 3))


def test_mobilenet_refuses_small_images_and_flat_samples():
    with pytest.raises(EdgesmithError, match="at least 32x32 pixels"):
        check_zoo_spec("mobilenet_v2", (28, 28, 1))
    with pytest.raises(EdgesmithError, match="needs image input"):
        build("resnet8", (64,), 10)


def test_mobilenet_v3_small_with_hard_swish_takes_qat():
    """tf_keras' MobileNetV3 writes hard-swish as `x + 3.0` and `x * (1/6)` (TFOpLambda, which
    tfmot cannot clone): QAT rebuilds those as Rescaling layers computing the same values."""
    from toolkit.passes.qat import quantize
    from toolkit.passes.qat_layers import _arithmetic_as_rescaling

    model = build("mobilenet_v3_small", (32, 32, 3), 3)
    rebuilt = _arithmetic_as_rescaling(model)
    assert not [layer for layer in rebuilt.layers if type(layer).__name__ == "TFOpLambda"]
    x = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    wrapped = quantize(model, ())
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in wrapped.layers)
