"""Static check of a .tflite file against a LiteRT target's accelerator."""
from __future__ import annotations

from pathlib import Path

from toolkit.checks.flatbuffer import TFLiteGraph, read_tflite
from toolkit.checks.macs import op_macs
from toolkit.checks.placement import model_blockers, place
from toolkit.checks.report import ACCELERATOR, CPU, CompatibilityReport, OpPlacement
from toolkit.targets import Target


def check_tflite(path: Path, target: Target) -> CompatibilityReport:
    """Place every op of `path` on `target`'s accelerator or its CPU fallback."""
    graph = read_tflite(path)
    blockers = model_blockers(graph, target)
    placement = place(graph, target, blockers)
    ops = []
    for op in graph.ops:
        rule = (target.custom_ops if op.custom else target.ops).get(op.name)
        ops.append(OpPlacement(
            index=op.index, op=op.name, version=op.version,
            runs_on=ACCELERATOR if placement.on_accelerator[op.index] else CPU,
            supported=placement.supported[op.index], reason=placement.reasons[op.index],
            macs=op_macs(op, graph), note=rule.note if rule else "",
        ))
    return CompatibilityReport(
        artifact=str(path), target=target.name, accelerator=target.accelerator.name,
        fallback=target.accelerator.fallback, format="tflite", ops=tuple(ops),
        blockers=tuple(blockers), partition_at=placement.partition_at,
        partitions=placement.partitions, param_cache=_param_cache(graph, placement.on_accelerator, target),
        notes=tuple(_notes(graph, target)),
    )


def _param_cache(graph: TFLiteGraph, on_accelerator: tuple[bool, ...], target: Target) -> dict[str, int] | None:
    """Bytes of constant operands (weights, biases) of the mapped ops vs the on-chip cache."""
    capacity = target.accelerator.param_cache_bytes
    if capacity is None:
        return None
    constants = {t.index: t.nbytes for op in graph.ops if on_accelerator[op.index] for t in graph.constant_inputs(op)}
    return {"used_bytes": sum(constants.values()), "capacity_bytes": capacity}


def _notes(graph: TFLiteGraph, target: Target) -> list[str]:
    notes = [f"static check against {target.source.name}: op names, versions, tensor types and shapes; "
             f"op parameters (strides, quantization scales, sizes) can still make the runtime keep an op on the CPU"]
    if graph.subgraphs > 1:
        notes.append(f"the model has {graph.subgraphs} subgraphs; only the main one is listed "
                     f"(control-flow bodies run through their WHILE/IF op)")
    return notes
