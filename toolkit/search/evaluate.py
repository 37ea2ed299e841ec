"""Trials → result records, through the stages of one run: the baseline is trained once, and a
trial that draws a chain and precision already measured costs nothing (its record is reused; on
a resumed search every stage is found in the run folder's cache)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from toolkit.config import Variant
from toolkit.records import Record

if TYPE_CHECKING:
    from toolkit.pipeline import Run


@dataclass(frozen=True)
class Candidate:
    """What one trial asks to measure: a chain (step texts) at one precision."""

    chain: tuple[str, ...]
    precision: str


class Evaluator:
    """Measures candidates on the run's one target; one record per (variant, precision)."""

    def __init__(self, state: Run, baseline: Callable[[], Any]) -> None:
        self.state, self.baseline = state, baseline
        self.reasons: dict[tuple[str, str], str] = {}  # (variant id, precision) → why it has no record

    def evaluate(self, candidates: list[Candidate]) -> list[Record | str]:
        """A record per candidate, or the reason it has none (a pass not applicable, no timing).
        On Ray the batch's chains are built as Ray tasks first, then every file is timed here."""
        from toolkit.passes import chain_id, parse_chain

        steps = [parse_chain(candidate.chain) for candidate in candidates]
        if self.state.experiment.executor != "local":
            for variant_id, reason in self._build(candidates, steps).items():
                for candidate, chain in zip(candidates, steps):
                    if chain_id(chain) == variant_id:
                        self.reasons[(variant_id, candidate.precision)] = reason
        return [self._measure(candidate, chain) for candidate, chain in zip(candidates, steps)]

    def _build(self, candidates: list[Candidate], steps: list[tuple]) -> dict[str, str]:
        from toolkit.passes import chain_id
        from toolkit.scale import build_phase

        wanted: dict[str, tuple[tuple, list[str]]] = {}  # one task per chain, with every precision the batch wants
        for candidate, chain in zip(candidates, steps):
            entry = wanted.setdefault(chain_id(chain), (chain, []))
            if candidate.precision not in entry[1]:
                entry[1].append(candidate.precision)
        plan = [(Variant(tuple(str(step) for step in chain), tuple(precisions)), chain) for chain, precisions in wanted.values()]
        return build_phase(self.state, plan)

    def _measure(self, candidate: Candidate, steps: tuple) -> Record | str:
        from toolkit.passes import chain_id
        from toolkit.stages import export_and_bench_variant

        state, variant_id = self.state, chain_id(steps)
        key = (variant_id, candidate.precision)
        if key not in self.reasons and self._record(*key) is None:
            skipped = len(state.skipped)
            state.planned += 1
            export_and_bench_variant(state, steps, Variant(candidate.chain, (candidate.precision,)), self.baseline)
            if len(state.skipped) > skipped:
                self.reasons[key] = state.skipped[-1]["reason"]
            elif self._record(*key) is None:
                self.reasons[key] = f"target {state.targets[0].name} has no {candidate.precision} export for {variant_id}"
        record = self._record(*key)
        if record is None:
            return self.reasons[key]
        if (record.latency_ms or {}).get("p50") is None:
            return f"{record.path} was not timed ({record.latency_error or 'no latency'})"
        return record

    def _record(self, variant_id: str, precision: str) -> Record | None:
        return next((record for record in self.state.records
                     if record.variant == variant_id and record.precision == precision), None)
