"""Does an int8 ONNX file compute, on this CPU, the integers its graph describes?

ONNX Runtime fuses QuantizeLinear/DequantizeLinear pairs into integer kernels (QLinearConv,
QGemm). With fusions off the same graph runs as float operations on the dequantized integers:
exact integer arithmetic, on every CPU. Comparing the two sessions on real inputs measures what
the fused kernels lose here, e.g. the 16-bit saturation of u8×s8 kernels on x86 CPUs without
VNNI (see toolkit.cpu_features), whatever the model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.benchmark.runners import OnnxRuntimeRunner, predict
from toolkit.top1 import top1

SAMPLES = 1000  # enough to see a 1% disagreement, cheap enough for every int8 artifact
MIN_TOP1 = 0.99  # below this the fused kernels change predictions: a finding says why


def kernel_agreement(path: Path, x: np.ndarray, samples: int = SAMPLES) -> dict:
    """Top-1 agreement and max abs output difference: fused integer kernels vs exact math."""
    x = np.asarray(x[:samples], dtype=np.float32)
    fused = predict(OnnxRuntimeRunner(path, threads=1), x)
    exact = predict(OnnxRuntimeRunner(path, threads=1, fuse_qdq=False), x)
    max_abs_diff = float(np.abs(fused - exact).max())
    step = output_step(path)
    return {
        "top1": float((top1(fused) == top1(exact)).mean()),
        "max_abs_diff": max_abs_diff,
        "max_diff_steps": None if step is None else round(max_abs_diff / step, 3),
        "samples": len(x),
    }


def output_step(path: Path) -> float | None:
    """The output's quantization step (its DequantizeLinear scale), or None for a float output.
    Outputs one step apart are a rounding tie the two paths broke differently, not saturation."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    producer = next((node for node in graph.node if graph.output[0].name in node.output), None)
    scales = {tensor.name: tensor for tensor in graph.initializer}
    if producer is None or producer.op_type != "DequantizeLinear" or producer.input[1] not in scales:
        return None
    return float(numpy_helper.to_array(scales[producer.input[1]]).ravel()[0])
