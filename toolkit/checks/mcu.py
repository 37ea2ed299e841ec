"""Static check of a .tflite file against a microcontroller target: TensorFlow Lite Micro on a
Cortex-M, optionally with an Arm Ethos-U NPU that Vela compiles for.

Three questions decide whether a model ships on a microcontroller: does TFLM have a kernel for
every op it must run on the CPU (a missing one is a link error in the firmware, not a slow
path), where does each op run (CMSIS-NN's optimized kernels or TFLM's reference kernels; for an
Ethos-U, the NPU or the CPU, as Vela decides), and does it fit: the tensor arena in RAM, the
model in flash, against the budgets of the board the profile names.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from toolkit.checks.arena import plan_arena
from toolkit.checks.flatbuffer import TFLiteGraph, read_tflite
from toolkit.checks.report import ACCELERATOR, CPU, NOWHERE, CompatibilityReport, OpPlacement
from toolkit.checks.tflite import check_tflite
from toolkit.targets import Target

INSTALL = "pip install 'edgesmith[mcu]'"


def check_mcu(path: Path, target: Target) -> CompatibilityReport:
    """Op placement, TFLM kernel coverage, Vela's verdict (Ethos-U) and the memory fit."""
    from toolkit.converters.vela import COMPILER, compile_vela

    path = Path(path)
    graph = read_tflite(path)
    _refuse_compiled(path, graph, target)
    report = check_tflite(path, target)
    compiled, vela = None, None
    if target.accelerator.compiler == COMPILER:
        with tempfile.TemporaryDirectory(prefix="edgesmith-vela-") as scratch:
            result = compile_vela(path, Path(scratch), target)  # the check writes nothing next to the model
            if result.status == "compiled":
                compiled = (read_tflite(Path(result.output)), Path(result.output).stat().st_size)
        vela = dataclasses.replace(result, output=None, summary_csv=None)
    missing, notes = missing_kernels(compiled[0] if compiled else graph, target)
    memory = memory_fit(path, graph, target, vela, compiled)
    ops, partitions = report.ops, report.partitions
    if compiled:  # Vela decides what runs on the NPU: the ops left in its output run on the CPU
        on_cpu = {op.name for op in compiled[0].ops if not op.custom}
        ops = tuple(_placed_by_vela(op, on_cpu) for op in ops)
        partitions = sum(op.custom and op.name in target.custom_ops for op in compiled[0].ops)
    blockers = list(report.blockers)
    if missing:
        blockers.append(f"TensorFlow Lite Micro has no kernel for {', '.join(missing)}")
    if not memory["fits"]:
        blockers.append(f"does not fit the {memory['board']}: {_misses(memory)}")
    if vela is not None and vela.status != "compiled":
        notes.append(f"{COMPILER} {vela.status}: {vela.reason}; NPU placement and memory are the static estimate")
    return dataclasses.replace(
        report, ops=tuple(_without_kernel(op, missing) for op in ops), blockers=tuple(blockers), partitions=partitions,
        compile=vela.to_dict() if vela else None, memory=memory, notes=report.notes + tuple(notes),
    )


def _refuse_compiled(path: Path, graph: TFLiteGraph, target: Target) -> None:
    """Vela's output (its NPU work folded into `ethos-u` custom ops) is what the firmware embeds,
    not what Vela compiles: checking it would compile it a second time and find nothing to map."""
    from toolkit.converters.vela import COMPILER
    from toolkit.errors import EdgesmithError

    if target.accelerator.compiler == COMPILER and any(op.custom and op.name == "ethos-u" for op in graph.ops):
        raise EdgesmithError(f"{path.name} is already compiled by Vela (its NPU work is in ethos-u custom ops)",
                             "check the .tflite Vela compiled it from (the same name without _vela)")


def missing_kernels(graph: TFLiteGraph, target: Target) -> tuple[list[str], list[str]]:
    """Ops of `graph` that the installed TFLM cannot run (custom ops: unless the profile lists
    them, e.g. Vela's `ethos-u` op whose driver the firmware links), and notes."""
    from toolkit.benchmark.tflm import available

    if not available():
        return [], [f"TFLite Micro op check skipped: tflite-micro is not installed ({INSTALL})"]
    from toolkit.checks.tflm_ops import tflm_builtin_ops, tflm_version

    known = tflm_builtin_ops()
    missing = [op.name for op in graph.ops
               if (op.custom and op.name not in target.custom_ops) or (not op.custom and op.name not in known)]
    note = f"TFLite Micro kernels: the op resolver of tflite-micro {tflm_version()} ({len(known)} builtin ops)"
    return list(dict.fromkeys(missing)), [note]


def memory_fit(path: Path, graph: TFLiteGraph, target: Target, vela: Any, compiled: tuple | None) -> dict[str, Any]:
    """RAM (tensor arena) and flash (model bytes) needed vs the board's budgets.

    Cortex-M: the arena is the static greedy plan plus TFLM's bookkeeping (toolkit.checks.arena)
    and flash is the .tflite file. Ethos-U compiled by Vela: the arena is Vela's use of the
    memory the profile's `arena_memory` names plus TFLM's bookkeeping for the compiled graph, and
    flash is the compiled file.
    """
    options = target.options
    plan = plan_arena(graph)
    if compiled is not None:
        arena_memory = options["vela"]["arena_memory"]
        ram = vela.memory_used[arena_memory] + plan_arena(compiled[0]).persistent_bytes
        flash, source = compiled[1], f"Vela's {arena_memory} use + TFLM bookkeeping (estimated); flash: the compiled file"
    else:
        ram, flash = plan.arena_bytes, path.stat().st_size
        source = "static greedy plan (as TFLM) + TFLM bookkeeping (estimated); flash: the .tflite file"
    ram_budget = options["ram_bytes"] - options.get("reserved_ram_bytes", 0)
    flash_budget = options["flash_bytes"] - options.get("reserved_flash_bytes", 0)
    return {
        "board": options["board"], "peak_activation_bytes": plan.peak_activation_bytes,
        "persistent_bytes": plan.persistent_bytes, "ram_needed_bytes": ram, "ram_budget_bytes": ram_budget,
        "flash_needed_bytes": flash, "flash_budget_bytes": flash_budget,
        "fits": ram <= ram_budget and flash <= flash_budget, "source": source,
    }


def _misses(memory: dict[str, Any]) -> str:
    parts = []
    for kind, name in (("ram", "RAM for the tensor arena"), ("flash", "flash for the model")):
        needed, budget = memory[f"{kind}_needed_bytes"], memory[f"{kind}_budget_bytes"]
        if needed > budget:
            parts.append(f"needs {needed:,} B of {name}, {budget:,} B available (misses by {needed - budget:,} B)")
    return "; ".join(parts)


def _placed_by_vela(op: OpPlacement, on_cpu: set[str]) -> OpPlacement:
    """Vela's placement by op name (Vela renames and splits ops, so names are what it keeps)."""
    if op.op in on_cpu:
        return dataclasses.replace(op, runs_on=CPU, supported=False, reason="Vela left it on the CPU")
    return dataclasses.replace(op, runs_on=ACCELERATOR, supported=True, reason=None)


def _without_kernel(op: OpPlacement, missing: list[str]) -> OpPlacement:
    if op.op not in missing:
        return op
    return dataclasses.replace(op, runs_on=NOWHERE, supported=False,
                               reason=f"TensorFlow Lite Micro has no kernel for {op.op}")
