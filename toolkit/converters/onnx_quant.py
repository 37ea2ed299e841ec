"""int8 ONNX with ONNX Runtime's own quantizers (static QDQ and dynamic).

Static quantization follows the runtime's advice for CNNs on x86: QDQ format, S8S8,
per-channel weights, MinMax calibration. `reduce_range` stores weights in 7 bits (see
toolkit.converters.onnx_graph.reduce_weight_range for why). On small CNNs (digits,
Fashion-MNIST, 3 seeds) MinMax, Percentile and Entropy gave the same top-1 agreement within
0.1 pp; MinMax is the default, needs no histogram, and does not fail on a last calibration
batch of a different size.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from toolkit.errors import EdgesmithError
from toolkit.files import atomic_path


def quantize_static(
    fp32_path: Path, out_path: Path, calibration_x: np.ndarray, reduce_range: bool = False,
    nodes_to_exclude: Sequence[str] = (), per_channel: bool = True,
) -> Path:
    """Static int8 QDQ model (S8S8, per-channel weights unless `per_channel` is False),
    calibrated on already preprocessed samples; `reduce_range` keeps weights in 7 bits so no
    x86 CPU saturates; `nodes_to_exclude` stay float (names in the prepared graph; names that
    are not there are ignored)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static

    samples = np.asarray(calibration_x, dtype=np.float32)
    if samples.ndim < 2 or len(samples) == 0:
        raise EdgesmithError(
            f"static int8 needs calibration samples shaped (n, *input_shape), got {samples.shape}",
            "pass at least one preprocessed sample (a few hundred is typical)",
        )
    with tempfile.TemporaryDirectory(prefix="edgesmith-quant-") as folder:
        prepared = _pre_process(Path(fp32_path), Path(folder))
        input_name = _calibration_input(prepared, samples.shape[1:])
        with atomic_path(Path(out_path)) as tmp, _quiet_quantizer():
            ort_quantize_static(
                str(prepared),
                str(tmp),
                _SampleReader(input_name, samples),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                reduce_range=reduce_range,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=list(nodes_to_exclude),
            )
            if nodes_to_exclude:
                _feed_float(tmp, set(nodes_to_exclude))
    return Path(out_path)


def quantize_dynamic(fp32_path: Path, out_path: Path) -> Path:
    """Dynamic int8: weights stored int8, activations quantized per call (no calibration data).

    Convolutions become ConvInteger, which ONNX Runtime runs 3-5x slower than float Conv on
    small CNNs at batch 1; it shrinks the file, but static int8 is the fast option.
    """
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgesmith-quant-") as folder:
        prepared = _pre_process(Path(fp32_path), Path(folder))
        with atomic_path(Path(out_path)) as tmp, _quiet_quantizer():
            ort_quantize_dynamic(str(prepared), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    return Path(out_path)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop the quantizer's warnings on the root logger, which reach the user's terminal as
    `WARNING:root:…` lines they cannot act on (dozens of "Axis 1 is out-of-range for weight …"
    when a BatchNormalization on a 1×1 map survives the export: that tensor is quantized per
    tensor instead)."""

    import onnxruntime.quantization as ort_quantization

    package = str(Path(ort_quantization.__file__).parent)

    def keep(record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(package) or record.levelno > logging.WARNING

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _feed_float(path: Path, float_nodes: set[str]) -> None:
    """Put a Clip (to the int8 range: a no-op on the values) between each excluded node and the
    DequantizeLinear it reads. Without it ONNX Runtime's own graph optimizer
    (WeightBiasQuantization, on by default) sees a float Gemm/Conv fed by a DequantizeLinear and
    quantizes its weights again at load time, undoing the fallback (measured: the kept-float
    layer back at the int8 accuracy). The Q/DQ pair stays, so the producer keeps its integer kernel."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    dequantize = {node.output[0]: node for node in graph.node if node.op_type == "DequantizeLinear"}
    produced = {output for node in graph.node for output in node.output}
    clipped: dict[str, str] = {}
    for node in list(graph.node):
        if node.name not in float_nodes:
            continue
        for index, name in enumerate(node.input):
            dq = dequantize.get(name)
            if dq is None or dq.input[0] not in produced or not _scalar(constants, dq.input[1:3]):
                continue  # a stored weight, or a per-channel tensor: leave it
            if name not in clipped:
                clipped[name] = _clip_after(graph, dq, constants)
            node.input[index] = clipped[name]
    onnx.save(model, str(path))


def _scalar(constants: dict, names: Sequence[str]) -> bool:
    return len(names) == 2 and all(name in constants and constants[name].size == 1 for name in names)


def _clip_after(graph, dq, constants: dict) -> str:
    """A Clip of `dq`'s output to the range its integers represent; returns the Clip's output."""
    from onnx import helper, numpy_helper

    scale, zero_point = float(constants[dq.input[1]]), constants[dq.input[2]]
    info = np.iinfo(zero_point.dtype)
    low, high = ((np.float32(limit) - np.float32(zero_point)) * np.float32(scale) for limit in (info.min, info.max))
    output = f"{dq.output[0]}_float_clip"
    graph.initializer.extend([numpy_helper.from_array(np.array(low, np.float32), f"{output}_min"),
                              numpy_helper.from_array(np.array(high, np.float32), f"{output}_max")])
    position = list(graph.node).index(dq) + 1  # right after the DQ: the graph stays sorted
    graph.node.insert(position, helper.make_node("Clip", [dq.output[0], f"{output}_min", f"{output}_max"], [output], name=output))
    return output


def _pre_process(fp32_path: Path, folder: Path) -> Path:
    """ONNX Runtime's recommended shape inference + graph clean-up before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from toolkit.converters.onnx_files import load_checked

    load_checked(fp32_path)
    prepared = folder / "prepared.onnx"
    try:
        try:
            quant_pre_process(str(fp32_path), str(prepared))
        except Exception:  # noqa: BLE001 - its symbolic shape inference gives up on some graphs (attention)
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)  # ONNX's own inference only
    except Exception as error:
        raise EdgesmithError(
            f"ONNX Runtime could not prepare {fp32_path.name} for quantization: {error}".splitlines()[0],
            "use the 'dynamic' precision or the TFLite int8 route for this model",
        ) from error
    return prepared


def _calibration_input(path: Path, sample_shape: tuple[int, ...]) -> str:
    """Name of the model's single input, after checking the samples fit its shape."""
    import onnx

    inputs = onnx.load(str(path), load_external_data=False).graph.input
    if len(inputs) != 1:
        raise EdgesmithError(
            f"static int8 calibration supports models with one input, {path.name} has {len(inputs)}",
            "use the 'dynamic' precision for multi-input models",
        )
    dims = [dim.dim_value or None for dim in inputs[0].type.tensor_type.shape.dim][1:]
    if len(dims) != len(sample_shape) or any(d not in (None, s) for d, s in zip(dims, sample_shape)):
        raise EdgesmithError(
            f"calibration samples are shaped {tuple(sample_shape)} but the model input is {tuple(dims)}",
            "pass samples preprocessed exactly like the model's input",
        )
    return inputs[0].name


class _SampleReader:
    """Feeds calibration samples one at a time: works for fixed-batch (1) models too."""

    def __init__(self, input_name: str, samples: np.ndarray) -> None:
        self._batches = iter([{input_name: samples[i : i + 1]} for i in range(len(samples))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)
