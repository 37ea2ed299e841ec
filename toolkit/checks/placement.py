"""Which ops of a TFLite graph run on a target's accelerator, and why the others do not.

Three questions, answered from the target's data only: can the accelerator run this op at all
(name, version, tensor types, shapes)? Does the whole model pass the accelerator's entry rules
(quantized, static shapes)? And, given how the runtime partitions a graph, which supported ops
actually end up on it (the Edge TPU stops at the first unsupported op; the GPU delegate takes
only the largest run; XNNPACK takes every supported op)?
"""
from __future__ import annotations

from dataclasses import dataclass

from toolkit.checks.flatbuffer import OpInfo, TFLiteGraph
from toolkit.targets import Target

INTEGER_TYPES = ("int8", "uint8")
BOUNDARY_REASON = "float<->integer conversion at the model boundary runs on the CPU"


@dataclass(frozen=True)
class Placement:
    supported: tuple[bool, ...]  # the accelerator can run the op itself
    on_accelerator: tuple[bool, ...]  # ... and it actually ends up there
    reasons: tuple[str | None, ...]  # why an op is not on the accelerator
    partition_at: int | None  # first_unsupported only: the op where the compiler stops
    partitions: int  # runs of consecutive ops handed to the accelerator


def support_reason(op: OpInfo, graph: TFLiteGraph, target: Target) -> str | None:
    """None when the accelerator can run `op`, else the reason it cannot."""
    accel = target.accelerator
    rule = (target.custom_ops if op.custom else target.ops).get(op.name)
    if rule is None:
        kind = "custom op" if op.custom else "op"
        return f"{kind} {op.name} is not supported by {accel.name}"
    if rule.max_version is not None and op.version > rule.max_version:
        return f"{op.name} version {op.version} is newer than {accel.name} supports (up to {rule.max_version})"
    allowed = rule.tensor_types if rule.tensor_types is not None else accel.tensor_types
    tensors = graph.runtime_tensors(op)
    foreign = sorted({t.dtype for t in tensors} - set(allowed))
    if foreign:
        return f"{'/'.join(foreign)} tensors: {accel.name} runs {op.name} only on {'/'.join(allowed)}"
    for tensor in tensors:
        if accel.max_rank and len(tensor.shape) > accel.max_rank:
            return f"{len(tensor.shape)}-D tensor '{tensor.name}': {accel.name} handles at most {accel.max_rank}-D"
        inner = accel.max_inner_dims
        if inner and any(d != 1 for d in tensor.shape[:-inner]):
            return (f"tensor '{tensor.name}' of shape {list(tensor.shape)}: only the {inner} innermost "
                    f"dimensions may be larger than 1 on {accel.name}")
    return None


def model_blockers(graph: TFLiteGraph, target: Target) -> list[str]:
    """Whole-model reasons the accelerator takes nothing (its compiler refuses the file)."""
    accel = target.accelerator
    activations = [t for t in graph.tensors if not t.constant]
    blockers = []
    if accel.requires_quantized and not any(t.dtype in INTEGER_TYPES for t in activations):
        kinds = "/".join(sorted({t.dtype for t in activations})) or "no"
        blockers.append(f"model is not integer-quantized ({kinds} activations): {accel.name} runs only "
                        f"8-bit integer models — export it as full int8")
    if accel.static_shapes:
        dynamic = [t for t in activations if -1 in t.signature]
        dynamic.sort(key=lambda t: t.index not in graph.inputs)
        if dynamic:
            first = dynamic[0]
            blockers.append(f"dynamic shape: tensor '{first.name}' has shape {list(first.signature)} (-1 = any size); "
                            f"{accel.name} compiles static shapes only — fix the batch to 1")
    return blockers


def place(graph: TFLiteGraph, target: Target, blockers: list[str]) -> Placement:
    """Decide accelerator/CPU for every op, following the target's partitioning rule."""
    count = len(graph.ops)
    support = [support_reason(op, graph, target) for op in graph.ops]
    if blockers:
        reason = f"{target.accelerator.name} rejects the whole model: {blockers[0].split(':')[0]}"
        return Placement(tuple(r is None for r in support), (False,) * count, (reason,) * count, None, 0)
    decompress = [_is_weight_decompression(op, graph) for op in graph.ops]
    compute = [i for i in range(count) if not decompress[i]]
    on = [reason is None for reason in support]
    reasons = list(support)
    partition_at = None
    if target.accelerator.partitioning == "first_unsupported":
        partition_at = _cut_at_first_unsupported(graph, compute, on, reasons)
    elif target.accelerator.partitioning == "largest_partition":
        _keep_largest_run(compute, on, reasons, target.accelerator.name)
    for i in (i for i in range(count) if decompress[i]):
        consumers = [c for c in range(count) if set(graph.ops[i].outputs) & set(graph.ops[c].inputs)]
        on[i] = bool(consumers) and all(on[c] for c in consumers)
        reasons[i] = None if on[i] else "decompresses weights for an op that runs on the CPU"
    supported = tuple(support[i] is None or (decompress[i] and on[i]) for i in range(count))
    return Placement(supported, tuple(on), tuple(reasons), partition_at, len(_runs(on, compute)))


def _cut_at_first_unsupported(graph: TFLiteGraph, compute: list[int], on: list[bool],
                              reasons: list[str | None]) -> int | None:
    """Edge TPU compiler: map up to the first unsupported op, everything after runs on the CPU.

    Float<->integer conversions at the model's own inputs/outputs do not cut the graph: the
    compiler leaves them on the CPU and maps what lies between them.
    """
    boundary = _boundary_conversions(graph)
    for i in boundary:
        if not on[i]:
            reasons[i] = BOUNDARY_REASON
    cut = next((i for i in compute if not on[i] and i not in boundary), None)
    if cut is not None:
        for i in compute:
            if i > cut and on[i]:
                on[i] = False
                reasons[i] = (f"after the partition at op {cut} ({graph.ops[cut].name}): the compiler maps only "
                              f"the ops before the first unsupported one")
    return cut


def _keep_largest_run(compute: list[int], on: list[bool], reasons: list[str | None], accelerator: str) -> None:
    """GPU delegate: only the largest run of supported ops is delegated (one partition)."""
    runs = _runs(on, compute)
    if len(runs) < 2:
        return
    keep = max(runs, key=len)
    for i in (i for run in runs if run is not keep for i in run):
        on[i] = False
        reasons[i] = (f"supported, but outside the largest supported run (ops {keep[0]}-{keep[-1]}): "
                      f"{accelerator} takes only that one")


def _is_weight_decompression(op: OpInfo, graph: TFLiteGraph) -> bool:
    """A DEQUANTIZE of constant (fp16/int8) weights: delegates fold it into the consuming op."""
    return op.name == "DEQUANTIZE" and not op.custom and all(
        graph.tensors[i].constant for i in op.inputs if i >= 0)


def _boundary_conversions(graph: TFLiteGraph) -> set[int]:
    """QUANTIZE of a float model input, DEQUANTIZE to a float model output."""
    found = set()
    for op in graph.ops:
        if op.custom or not op.inputs or not op.outputs:
            continue
        source, result = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if op.name == "QUANTIZE" and source.index in graph.inputs and source.dtype.startswith("float"):
            found.add(op.index)
        if op.name == "DEQUANTIZE" and result.index in graph.outputs and result.dtype.startswith("float"):
            found.add(op.index)
    return found


def _runs(on: list[bool], order: list[int]) -> list[list[int]]:
    """Maximal runs of consecutive (in `order`) accelerator ops."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if on[i]:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs
