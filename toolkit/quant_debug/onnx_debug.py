"""Per-layer int8 error and float fallback for ONNX, with onnxruntime's qdq_loss_debug.

Every float tensor of the float model and of the QDQ model is made a graph output
(`modify_model_output_intermediate_tensors`), both run on the samples (`collect_activations`),
and each QDQ tensor is compared with its float twin (`create_activation_matching`,
`compute_activation_error`). That SQNR is cumulative — a tensor inherits its inputs' error —
so a layer's own part is its noise ratio minus the worst of the quantized tensors it reads.
Fallback is the quantizer's `nodes_to_exclude`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from toolkit.quant_debug.layers import LayerError, keras_layer, noise_ratio
from toolkit.targets import per_channel

FORMAT = "onnx"


class OnnxDebug:
    """The static-int8 ONNX export of `model` for `target`, seen tensor by tensor."""

    def __init__(self, model: Any, target: Any, calibration: np.ndarray, samples: np.ndarray, workdir: Path,
                 opset: int = 17) -> None:
        from toolkit.converters import onnx as converters

        self._workdir = workdir
        self._calibration = calibration
        self._samples = samples
        self._reduce_range = bool(target.options.get("reduce_range", False))
        self._per_channel = per_channel(target)
        self._layer_names = [layer.name for layer in model.layers]
        self._int8: Path | None = None
        self._fp32 = converters.export_keras(model, workdir / "fp32.onnx", tuple(model.input_shape[1:]), opset,
                                             target.fixed_batch)
        self._int8 = self.write(workdir / "int8.onnx", [])

    def layer_errors(self) -> list[LayerError]:
        import onnx
        from onnxruntime.quantization import qdq_loss_debug as debug

        activations = {}
        for name, path in (("float", self._fp32), ("int8", self._int8)):
            augmented = self._workdir / f"{name}_outputs.onnx"
            debug.modify_model_output_intermediate_tensors(str(path), str(augmented))
            activations[name] = debug.collect_activations(str(augmented), _Reader(self._samples))
        matches = debug.create_activation_matching(activations["int8"], activations["float"])
        matches = {name: match for name, match in matches.items()
                   if all(match.get(key) is not None for key in ("float", "pre_qdq", "post_qdq"))}
        sqnr = {name: errors["xmodel_err"] for name, errors in debug.compute_activation_error(matches).items()}
        int8_graph = onnx.load(str(self._int8)).graph
        upstream = _quantized_ancestors(onnx.load(str(self._fp32)).graph, set(sqnr))
        producers = {output: node.op_type for node in int8_graph.node for output in node.output}
        scales = _activation_scales(int8_graph)
        rows = []
        for name, value in sqnr.items():
            inherited = max((noise_ratio(sqnr[source]) for source in upstream[name]), default=0.0)
            rmse = float(np.sqrt(np.mean(np.square(np.concatenate(matches[name]["float"]).ravel()
                                                   - np.concatenate(matches[name]["post_qdq"]).ravel()))))
            rows.append(LayerError(
                tensor=name, layer=keras_layer(name, self._layer_names), op=producers.get(f"{name}{_Q_INPUT}", producers.get(name, "input")),
                sqnr_db=math.inf if value >= _EXACT_DB else value,
                rmse_per_scale=rmse / scales[name] if scales.get(name) else None,
                noise_ratio=max(0.0, noise_ratio(value) - inherited)))
        return rows

    def write(self, path: Path, keep_float: Sequence[LayerError]) -> Path:
        """The static int8 file with the layers of `keep_float` excluded from quantization."""
        from toolkit.converters.onnx_quant import quantize_static

        return quantize_static(self._fp32, path, self._calibration, self._reduce_range,
                               nodes_to_exclude=self._node_names(keep_float), per_channel=self._per_channel)

    def _node_names(self, keep_float: Sequence[LayerError]) -> list[str]:
        """Every node of the layer (by its Keras path, so fused names like
        `model/layer/MatMul/MatMulAddFusion` match too) or, unmapped, the tensor's producer."""
        import onnx

        names = set()
        for path in [path for path in (self._fp32, self._int8) if path is not None]:
            for node in onnx.load(str(path)).graph.node:
                for error in keep_float:
                    if (error.layer and keras_layer(node.name, [error.layer])) or error.tensor in node.output:
                        names.add(node.name)
        return sorted(names)


_Q_INPUT = "_QuantizeLinear_Input"  # the quantizer's name for a graph output's float tensor
_EXACT_DB = 20 * math.log10(1 / np.finfo(float).eps) - 1  # the library's cap for an exact tensor


def _quantized_ancestors(graph: Any, quantized: set[str]) -> dict[str, set[str]]:
    """For each quantized tensor, the nearest quantized tensors it is computed from."""
    producer = {output: node for node in graph.node for output in node.output}
    found = {}
    for name in quantized:
        sources, stack, seen = set(), list(producer[name].input) if name in producer else [], set()
        while stack:
            tensor = stack.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            if tensor in quantized:
                sources.add(tensor)
            elif tensor in producer:
                stack.extend(producer[tensor].input)
        found[name] = sources
    return found


def _activation_scales(graph: Any) -> dict[str, float]:
    """The scale of each tensor's QuantizeLinear (per-tensor activations)."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    scales = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.input[1] in constants:
            scale = constants[node.input[1]]
            if scale.size == 1:
                scales[node.input[0].removesuffix(_Q_INPUT)] = float(scale)
    return scales


class _Reader:
    """Feeds the samples one at a time (fixed-batch models too); iterable, as
    collect_activations wants."""

    def __init__(self, samples: np.ndarray) -> None:
        from toolkit.converters.onnx import INPUT_NAME

        self._batches = iter([{INPUT_NAME: samples[i : i + 1]} for i in range(len(samples))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def __iter__(self):
        return self._batches
