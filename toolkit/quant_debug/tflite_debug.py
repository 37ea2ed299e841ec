"""Per-layer int8 error and float fallback for TFLite, with TensorFlow's QuantizationDebugger.

The debugger quantizes the calibrated model with a NumericVerify op after every quantized
tensor, which runs the float op on the same (dequantized) inputs: the error it reports is the
one each layer adds, not the error it inherits. Its `denylisted_nodes` keep chosen tensors in
float, and `get_nondebug_quantized_model()` writes the deployable mixed file.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from toolkit.quant_debug.layers import LayerError, keras_layer, sqnr_db
from toolkit.files import write_bytes

FORMAT = "tflite"


class TFLiteDebug:
    """The int8 TFLite export of `model` for `target`, seen layer by layer."""

    def __init__(self, model: Any, target: Any, calibration: np.ndarray, samples: np.ndarray) -> None:
        from toolkit._tf import tf
        from toolkit.converters.tflite import int8_converter
        from toolkit.targets import per_channel

        lite = tf().lite.experimental
        self._lite = lite
        self._samples = samples
        self._layer_names = [layer.name for layer in model.layers]
        converter = int8_converter(model, calibration, target.int8_io_dtype, target.fixed_batch, per_channel(target))
        self._debugger = lite.QuantizationDebugger(
            converter=converter, debug_dataset=self._dataset, debug_options=self._options([]))

    def layer_errors(self) -> list[LayerError]:
        """Each quantized tensor's error on the samples. The statistics need the float and the
        quantized tensor side by side, which only an interpreter that keeps every tensor has:
        a second debugger on the instrumented model."""
        metrics = {"signal": _signal_power, "noise": _noise_power}
        viewer = self._lite.QuantizationDebugger(
            quant_debug_model_content=self._debugger.get_debug_quantized_model(), debug_dataset=self._dataset,
            debug_options=self._lite.QuantizationDebugOptions(layer_direct_compare_metrics=metrics))
        viewer.run()
        dump = io.StringIO()
        viewer.layer_statistics_dump(dump)
        return [self._row(row) for row in csv.DictReader(io.StringIO(dump.getvalue()))]

    def write(self, path: Path, keep_float: Sequence[LayerError]) -> Path:
        """The deployable int8 file with the tensors of `keep_float` computed in float."""
        self._debugger.options = self._options([error.tensor for error in keep_float])
        write_bytes(path, self._debugger.get_nondebug_quantized_model())
        return path

    def _row(self, row: dict[str, str]) -> LayerError:
        signal, noise, scale = float(row["signal"]), float(row["noise"]), float(row["scale"])
        return LayerError(
            tensor=row["tensor_name"], layer=keras_layer(row["tensor_name"], self._layer_names), op=row["op_name"],
            sqnr_db=sqnr_db(signal, noise), rmse_per_scale=float(np.sqrt(noise)) / scale if scale > 0 else None,
            noise_ratio=noise / max(signal, 1e-30))

    def _options(self, denylisted_nodes: list[str]) -> Any:
        """fully_quantize: integer I/O like the pipeline's int8 export."""
        return self._lite.QuantizationDebugOptions(fully_quantize=True, denylisted_nodes=denylisted_nodes or None)

    def _dataset(self):
        for sample in self._samples:
            yield [sample[None, ...].astype(np.float32)]


def _signal_power(float_values: np.ndarray, quantized: np.ndarray, scale: float, zero_point: int) -> float:
    return float(np.mean(np.square(float_values, dtype=np.float64)))


def _noise_power(float_values: np.ndarray, quantized: np.ndarray, scale: float, zero_point: int) -> float:
    dequantized = (quantized.astype(np.float64) - zero_point) * scale
    return float(np.mean(np.square(dequantized - float_values)))
