"""Keras 3 → tf_keras translation: layers, graphs, weights, the numeric check and its refusals."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import EdgesmithError
from toolkit.keras3 import is_keras3_file, is_keras3_model, to_tf_keras, untranslated_reason, verify
from toolkit.model_files import load_user_model

keras3 = pytest.importorskip("keras")
SAMPLE = np.random.default_rng(0).random((8, 16, 16, 3), dtype=np.float32)


def _perturb_batchnorm(model):
    """Non-trivial moving statistics, so a wrong weight order would change the outputs."""
    for layer in model.layers:
        if isinstance(layer, keras3.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma * 1.3, beta + 0.1, mean + 0.2, variance * 2.0])
    return model


def _cnn():
    k = keras3
    inputs = k.Input((16, 16, 3))
    x = k.layers.Rescaling(2.0, offset=-1.0)(inputs)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu6", kernel_regularizer=k.regularizers.L2(1e-4),
                        name="regularized")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    a = k.layers.DepthwiseConv2D(3, padding="same", activation="hard_swish", name="dw")(x)
    b = k.layers.SeparableConv2D(8, 3, padding="same", activation="silu")(x)
    x = k.layers.Add()([a, b])
    x = k.layers.Concatenate()([x, k.layers.ZeroPadding2D(0)(x) * 0.5 + 1.0])
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.Activation("hard_sigmoid")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    x = k.layers.Dense(6, activation="leaky_relu")(x)
    return _perturb_batchnorm(k.Model(inputs, k.layers.Dense(3, activation="softmax")(x)))


def test_functional_graph_translates_exactly():
    model = _cnn()
    translated = to_tf_keras(model, SAMPLE)
    assert not is_keras3_model(translated) and is_keras3_model(model)
    assert verify(model, translated, SAMPLE) <= 1e-5
    assert translated.get_layer("regularized").kernel_regularizer is not None


def test_sequential_and_nested_models():
    k = keras3
    inner = k.Sequential([k.Input((16, 16, 3)), k.layers.Conv2D(4, 3), k.layers.BatchNormalization(), k.layers.ReLU()])
    inputs = k.Input((16, 16, 3))
    x = k.layers.Flatten()(inner(inputs))
    outer = _perturb_batchnorm(inner) and k.Model(inputs, k.layers.Dense(2)(x))
    assert verify(outer, to_tf_keras(outer, SAMPLE), SAMPLE) <= 1e-5
    normalization = k.layers.Normalization()
    normalization.adapt(SAMPLE)
    sequential = k.Sequential([k.Input((16, 16, 3)), normalization, k.layers.AveragePooling2D(2), k.layers.Flatten(),
                               k.layers.Dense(3, activation="gelu")])
    assert verify(sequential, to_tf_keras(sequential, SAMPLE), SAMPLE) <= 1e-5


def test_augmentation_becomes_identity_and_resizing_layers_translate(tmp_path):
    """The Keras image-classification tutorial's model: augmentation inside the model, then
    resizing; the augmentation layers hold random-generator state, not weights to copy."""
    k = keras3
    augment = k.Sequential([k.layers.RandomFlip("horizontal"), k.layers.RandomRotation(0.1), k.layers.RandomZoom(0.1),
                            k.layers.RandomContrast(0.2)], name="augment")
    inputs = k.Input((16, 16, 3))
    x = k.layers.Resizing(12, 12, name="resize")(augment(inputs))
    x = k.layers.CenterCrop(10, 10)(x)
    x = k.layers.Conv2D(8, 3, activation="relu")(k.layers.GaussianNoise(0.1)(x))
    x = k.layers.GroupNormalization(groups=4)(x)
    x = k.layers.UnitNormalization()(k.layers.GlobalAveragePooling2D()(x))
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(x))
    translated = to_tf_keras(model, SAMPLE)
    assert verify(model, translated, SAMPLE) <= 1e-5
    model.save(tmp_path / "tutorial.keras")
    loaded = load_user_model(tmp_path / "tutorial.keras", sample=SAMPLE)
    np.testing.assert_allclose(loaded.predict(SAMPLE, verbose=0), model.predict(SAMPLE, verbose=0), atol=1e-5)


def test_one_dimensional_layers_translate():
    k = keras3
    inputs = k.Input((32, 4))
    x = k.layers.ZeroPadding1D(1)(inputs)
    x = k.layers.SeparableConv1D(8, 3, activation="relu")(x)
    x = k.layers.Cropping1D((1, 1))(k.layers.UpSampling1D(2)(x))
    x = k.layers.Conv1DTranspose(4, 3)(k.layers.SpatialDropout1D(0.1)(x))
    model = k.Model(inputs, k.layers.Dense(2)(k.layers.Flatten()(x)))
    sample = np.random.default_rng(1).random((8, 32, 4), dtype=np.float32)
    assert verify(model, to_tf_keras(model, sample), sample) <= 1e-5


def test_an_unknown_layer_is_named():
    k = keras3
    inputs = k.Input((16, 16, 3))
    x = k.layers.Reshape((16, 48))(inputs)
    model = k.Model(inputs, k.layers.LSTM(4, name="my_lstm")(x))
    with pytest.raises(EdgesmithError, match="layer 'my_lstm' \\(LSTM\\) has no tf_keras translation"):
        to_tf_keras(model, SAMPLE)
    ops = k.Model(inputs, k.ops.sin(inputs))
    with pytest.raises(EdgesmithError, match="operation '.*' .*Sin.* has no tf_keras translation"):
        to_tf_keras(ops, SAMPLE)


def test_a_wrong_translation_is_refused_naming_the_layer():
    model = _cnn()
    translated = to_tf_keras(model, SAMPLE)
    layer = translated.get_layer("bn")
    layer.set_weights([w * 1.01 for w in layer.get_weights()])
    with pytest.raises(EdgesmithError, match="first at layer 'bn'"):
        verify(model, translated, SAMPLE)


def test_keras3_files_load_through_the_normal_loader(tmp_path):
    k = keras3
    cnn = _cnn()
    cnn.save(tmp_path / "model.keras")
    # Keras 3 cannot reload its own legacy .h5 files when they contain operations (x * 0.5)
    plain = k.Sequential([k.Input((16, 16, 3)), k.layers.Conv2D(4, 3), k.layers.Flatten(), k.layers.Dense(2)])
    plain.save(tmp_path / "model.h5")
    for name, model in (("model.keras", cnn), ("model.h5", plain)):
        assert is_keras3_file(tmp_path / name)
        loaded = load_user_model(tmp_path / name, sample=SAMPLE)
        np.testing.assert_allclose(loaded.predict(SAMPLE, verbose=0), model.predict(SAMPLE, verbose=0), atol=1e-5)


def test_safe_mode_stays_on_for_keras3_lambda_layers(tmp_path):
    k = keras3
    model = k.Sequential([k.Input((16, 16, 3)), k.layers.Lambda(lambda x: x * 2), k.layers.Flatten(), k.layers.Dense(2)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(EdgesmithError, match="--allow-unsafe"):
        load_user_model(tmp_path / "lambda.keras")
    kept = load_user_model(tmp_path / "lambda.keras", allow_unsafe=True)
    assert is_keras3_model(kept) and "(Lambda) has no tf_keras translation" in untranslated_reason(kept)


def test_translated_arithmetic_is_layers_and_takes_qat(tmp_path):
    """Constant arithmetic (`x * 0.5 + 1.0`, hard-swish's `x + 3`) becomes Rescaling layers and
    tensor arithmetic merge layers, not TFOpLambda, which tfmot cannot clone: QAT wraps the
    translated model, and its int8 file computes what the QAT model computes."""
    from toolkit._tf import keras
    from toolkit.benchmark.device_runners import LiteRTRunner, predict
    from toolkit.converters.tflite import convert_to_file
    from toolkit.passes.qat import quantize

    k = keras3
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(8, 3, padding="same", activation="hard_swish")(inputs)
    excite = k.layers.Dense(8, activation="hard_sigmoid")(k.layers.GlobalAveragePooling2D(keepdims=True)(x))
    x = k.layers.Concatenate()([x * excite, x * 0.5 + 1.0, 2.0 - x, x - excite])
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling2D()(x)))
    translated = to_tf_keras(model, SAMPLE)
    assert verify(model, translated, SAMPLE) <= 1e-5
    kinds = {type(layer).__name__ for layer in translated.layers}
    assert "TFOpLambda" not in kinds and {"Rescaling", "Multiply", "Subtract"} <= kinds
    wrapped = quantize(translated, ())
    wrapped.compile(optimizer="adam", loss=keras().losses.SparseCategoricalCrossentropy())
    wrapped.fit(SAMPLE, np.arange(len(SAMPLE)) % 3, epochs=2, verbose=0)
    path = convert_to_file(wrapped, tmp_path / "qat.tflite", "int8", calibration_x=SAMPLE)
    int8 = predict(LiteRTRunner(path, reference_kernels=True), SAMPLE)  # portable integer math: the same on every CPU
    np.testing.assert_allclose(int8, wrapped.predict(SAMPLE, verbose=0), atol=0.02)


def test_nested_models_used_once_are_inlined_so_tfmot_can_wrap_them():
    """Keras' tutorial and transfer-learning models nest an augmentation block and a base model;
    tfmot cannot wrap a model inside a model, so those are inlined (QAT then wraps the whole
    graph); a base called with training=False keeps its BatchNorm in inference mode (frozen).
    A sub-model called twice keeps its single set of layers by staying nested."""
    from toolkit.passes.qat import quantize

    k = keras3
    base_inputs = k.Input((16, 16, 3))
    x = k.layers.BatchNormalization(name="base_bn")(k.layers.Conv2D(8, 3, name="base_conv")(base_inputs))
    base = _perturb_batchnorm(k.Model(base_inputs, k.layers.ReLU(name="base_relu")(x), name="base"))
    augment = k.Sequential([k.layers.RandomFlip("horizontal"), k.layers.RandomZoom(0.1)], name="augment")
    model = k.Sequential([k.Input((16, 16, 3)), augment, k.layers.Rescaling(1 / 255), base,
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(3)], name="transfer")
    translated = to_tf_keras(model, SAMPLE * 255)
    assert verify(model, translated, SAMPLE * 255) <= 1e-5
    assert not [layer.name for layer in translated.layers if hasattr(layer, "layers")]
    assert {"base_conv", "base_bn", "base_relu"} <= {layer.name for layer in translated.layers}
    assert quantize(translated, ()).count_params() > translated.count_params()
    assert translated.get_layer("base_bn").trainable  # called without training=False: trained like any layer

    inputs = k.Input((16, 16, 3))  # Keras' transfer-learning recipe: the base runs in inference mode
    frozen = k.Model(inputs, k.layers.Dense(3)(k.layers.GlobalAveragePooling2D()(base(inputs, training=False))))
    translated = to_tf_keras(frozen, SAMPLE)
    assert verify(frozen, translated, SAMPLE) <= 1e-5
    assert not translated.get_layer("base_bn").trainable and translated.get_layer("base_conv").trainable
    assert quantize(translated, ()).count_params() > translated.count_params()

    inputs = k.Input((16, 16, 3))
    shared = k.Model(inputs, k.layers.Dense(4, name="shared_dense")(k.layers.Flatten()(inputs)), name="shared")
    pair = k.Model(inputs, k.layers.Concatenate()([shared(inputs), shared(inputs * 2.0)]))
    twice = to_tf_keras(pair, SAMPLE)
    assert verify(pair, twice, SAMPLE) <= 1e-5 and "shared" in {layer.name for layer in twice.layers}


def test_a_shared_layer_is_refused_by_name():
    k = keras3
    inputs = k.Input((16, 16, 3))
    dense = k.layers.Dense(4, name="tied")
    model = k.Model(inputs, k.layers.Add()([dense(inputs), dense(inputs * 2.0)]))
    with pytest.raises(EdgesmithError, match="layer 'tied' \\(Dense\\) is called 2 times"):
        to_tf_keras(model, SAMPLE)
