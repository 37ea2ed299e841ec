"""Keras → TFLite with the four post-training precisions.

fp32 is the reference; fp16 halves weights for the GPU delegate; dynamic-range quantizes
weights only (no calibration); int8 quantizes weights and activations from a calibration
sample and makes the I/O integer, which is what NPUs and the Edge TPU require.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit._tf import tf
from toolkit.errors import EdgesmithError, first_line
from toolkit.files import write_bytes
from toolkit.targets import INT8_IO_DTYPES


def convert(
    model: Any,
    precision: str,
    calibration_x: np.ndarray | None = None,
    int8_io_dtype: str = "int8",
    fixed_batch: bool = False,
    per_channel: bool = True,
) -> bytes:
    """Return the TFLite flatbuffer of `model` at `precision`.

    `fixed_batch` pins the batch dimension to 1 (Edge TPU and most NPUs need static shapes);
    otherwise the batch stays dynamic so the benchmark can also measure throughput.
    `per_channel` False gives post-training int8 one weight scale per tensor (a QAT model keeps
    the per-channel ranges it was trained with: the converter takes them as they are).
    """
    try:
        return _configured(_frozen_converter(model, fixed_batch), precision, calibration_x, int8_io_dtype,
                           per_channel).convert()
    except EdgesmithError:
        raise
    except Exception as exc:  # noqa: BLE001 - converter errors are long MLIR dumps; keep the first line
        first_error = exc
    try:  # the converter's own route for Keras models (through a SavedModel) handles more graphs
        converter = _saved_model_converter(model, fixed_batch)
        return _configured(converter, precision, calibration_x, int8_io_dtype, per_channel).convert()
    except Exception:  # noqa: BLE001 - report the first route's error, which is the usual one
        raise EdgesmithError(
            f"TFLite {precision} conversion of '{model.name}' failed: {first_line(first_error)}",
            "check the model uses TFLite builtin ops, or drop this precision",
        ) from None


def _configured(converter: Any, precision: str, calibration_x: np.ndarray | None, int8_io_dtype: str,
                per_channel: bool = True) -> Any:
    tensorflow = tf()
    if precision == "fp16":
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tensorflow.float16]
    elif precision == "dynamic":
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
    elif precision == "int8":
        _set_int8(converter, calibration_x, int8_io_dtype, per_channel)
    elif precision != "fp32":
        raise EdgesmithError(f"unknown precision '{precision}'", "use fp32, fp16, dynamic or int8")
    return converter


def convert_to_file(model: Any, path: Path, precision: str, **options: Any) -> Path:
    """Convert and write atomically; returns the path."""
    write_bytes(path, convert(model, precision, **options))
    return path


def int8_converter(model: Any, calibration_x: np.ndarray, int8_io_dtype: str = "int8", fixed_batch: bool = False,
                   per_channel: bool = True) -> Any:
    """The converter `convert(..., "int8")` uses, unconverted: toolkit.quant_debug hands it to
    TensorFlow's QuantizationDebugger so per-layer errors describe the same calibration."""
    return _configured(_frozen_converter(model, fixed_batch), "int8", calibration_x, int8_io_dtype, per_channel)


def _set_int8(converter: Any, calibration_x: np.ndarray | None, int8_io_dtype: str, per_channel: bool = True) -> None:
    tensorflow = tf()
    if calibration_x is None or len(calibration_x) == 0:
        raise EdgesmithError("int8 conversion needs calibration samples", "provide a non-empty training split")
    if int8_io_dtype not in INT8_IO_DTYPES:
        raise EdgesmithError(f"int8 I/O type '{int8_io_dtype}' is not supported", "use int8 or uint8")
    converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(calibration_x)
    converter.target_spec.supported_ops = [tensorflow.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = getattr(tensorflow, int8_io_dtype)
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if not per_channel:
        converter._experimental_disable_per_channel = True  # the converter's only switch for it (TF 2.x)


def _frozen_converter(model: Any, fixed_batch: bool) -> Any:
    """A converter of the model's inference function with its weights frozen in. The converter's
    default for Keras models first writes and reads back a temporary SavedModel, which took 3 s of
    every 3.3 s conversion of the default cnn; this route gives the same kernels and outputs
    (the file lacks only the SavedModel's signature names) in 0.2 s."""
    return tf().lite.TFLiteConverter.from_concrete_functions([_inference_function(model, fixed_batch)])


def _saved_model_converter(model: Any, fixed_batch: bool) -> Any:
    """TensorFlow's own route: through a SavedModel of the model (of its inference function when
    the batch is pinned)."""
    lite = tf().lite
    if not fixed_batch:
        return lite.TFLiteConverter.from_keras_model(model)
    return lite.TFLiteConverter.from_concrete_functions([_inference_function(model, fixed_batch)], model)


def _inference_function(model: Any, fixed_batch: bool) -> Any:
    """`model(x, training=False)` traced for its inputs, with the batch pinned to 1 or left open."""
    tensorflow = tf()
    batch = 1 if fixed_batch else None
    specs = [
        tensorflow.TensorSpec((batch, *tensor.shape[1:]), tensor.dtype, name="input" if len(model.inputs) == 1 else f"input_{index}")
        for index, tensor in enumerate(model.inputs)
    ]
    single = len(specs) == 1
    function = tensorflow.function(lambda *x: model(x[0] if single else list(x), training=False), input_signature=specs)
    return function.get_concrete_function()


def _representative(calibration_x: np.ndarray):
    """Feed calibration samples one at a time, as the converter expects."""

    def generate():
        for sample in calibration_x:
            yield [sample[None, ...].astype(np.float32)]

    return generate
