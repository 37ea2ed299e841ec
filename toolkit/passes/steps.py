"""Chain steps as users write them, validated before any training starts.

Text form: `name[:arg,...]` where an arg is positional (`prune:0.8`, `prune:2:4`, `cluster:16`)
or `key=value` (`distill:student=mlp,width=0.5`); `prune2:4` is accepted too. Table form (TOML):
`{pass = "prune", sparsity = 0.8}`. Every error names the step and how to write it instead.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from toolkit.errors import EdgesmithError
from toolkit.passes.registry import PASSES

_COMPACT = re.compile(r"^(?P<name>[a-z_]+)(?P<arg>\d+:\d+)$")


@dataclass(frozen=True)
class Step:
    """One validated step: the pass name, its Params and the text the user wrote."""

    name: str
    params: Any
    text: str

    def __str__(self) -> str:
        return self.text

    def id(self) -> str:
        """Readable id: prune80, prune2of4, cluster16, qat, distill."""
        return self.name + self.params.suffix()

    def spec(self) -> dict[str, Any]:
        """JSON-friendly identity of the step (for cache keys and run records)."""
        return {"pass": self.name, **dataclasses.asdict(self.params)}


def parse_step(item: str | Mapping[str, Any] | Step) -> Step:
    """Parse `"prune:0.8"` or `{"pass": "prune", "sparsity": 0.8}` into a validated Step."""
    if isinstance(item, Step):
        return item
    if isinstance(item, Mapping):
        return _parse_table(item)
    if not isinstance(item, str):
        raise EdgesmithError(f"chain step {item!r} is neither text nor a table", 'write steps like "prune:0.8"')
    text = item.strip()
    compact = _COMPACT.match(text)
    name, _, args = (compact["name"], ":", compact["arg"]) if compact else text.partition(":")
    technique = _technique(name.strip(), text)
    return Step(name.strip(), parse_settings(technique.params, args, text), text)


def parse_settings(params_type: type, args: str, text: str) -> Any:
    """`args` ("0.8", "student=mlp,width=0.5") → a validated `params_type`; also used for zoo
    model specs such as "mobilenet_v2:alpha=0.35"."""
    positional, keywords = _split_args(args, text) if args else ([], {})
    fields = _assign_positional(params_type, positional, text)
    for key, value in keywords.items():
        if key in fields:
            raise EdgesmithError(f"step '{text}' sets {key} twice", f"write it like {params_type.EXAMPLE}")
        fields[key] = value
    return _make_params(params_type, fields, text)


def parse_chain(items: Iterable[str | Mapping[str, Any] | Step]) -> tuple[Step, ...]:
    """Parse and check the order the registry asks for: last-only and first-only passes, no pass
    twice, and no pass after one it would undo (prune after cluster)."""
    steps = tuple(parse_step(item) for item in items)
    names = [step.name for step in steps]
    for position, step in enumerate(steps):
        technique = PASSES[step.name]
        if technique.last_only and position != len(steps) - 1:
            raise EdgesmithError(
                f"step '{step.text}' must be last in a chain: it outputs a fake-quantized model for the int8 export",
                f"move {step.name} to the end, e.g. [\"prune:0.8\", \"{step.name}\"]",
            )
        if technique.first_only and position != 0:
            raise EdgesmithError(
                f"step '{step.text}' must be first in a chain: it trains a new model, discarding earlier steps",
                f"move {step.name} to the front, e.g. [\"{step.name}\", \"prune:0.5\", \"qat\"]",
            )
        if names.count(step.name) > 1:
            raise EdgesmithError(f"pass {step.name} appears twice in the chain", "keep one step per pass")
        for earlier in (name for name in technique.not_after if name in names[:position]):
            raise EdgesmithError(
                f"{step.name} after {earlier} would undo the {earlier} step",
                f"put {step.name} before {earlier}, e.g. [\"{step.name}\", \"{earlier}\"]",
            )
    return steps


def chain_id(steps: Iterable[Step]) -> str:
    """Readable variant id, e.g. "distill+prune50+qat"; "baseline" for an empty chain."""
    return "+".join(step.id() for step in steps) or "baseline"


def is_qat_chain(steps: Iterable[Step]) -> bool:
    """True when the chain ends in a quantization-aware pass: its model only makes sense as int8."""
    steps = tuple(steps)
    return bool(steps) and PASSES[steps[-1].name].quantization_aware


def control_chain(steps: Iterable[Step]) -> tuple[Step, ...] | None:
    """For a chain starting with a pass that has a control (distill), the same chain with the
    control pass in its place (the student trained from scratch)."""
    steps = tuple(steps)
    control = PASSES[steps[0].name].control if steps else ""
    if not control:
        return None
    first = steps[0]
    return (Step(control, first.params, control + first.text[len(first.name) :]), *steps[1:])


def control_variant(variant_id: str) -> str | None:
    """The id of the control variant for a variant id (distill… → scratch…), or None."""
    for name, technique in PASSES.items():
        if technique.control and variant_id.startswith(name):
            return technique.control + variant_id[len(name) :]
    return None


def is_sparsifying(step_text: str) -> bool:
    """Whether a chain step (as text, e.g. "prune:0.8") is a pass whose gain is in gzip size."""
    name = step_text.split(":", 1)[0].strip()
    technique = PASSES.get(name) or next((t for n, t in PASSES.items() if name.startswith(n)), None)
    return bool(technique and technique.sparsifying)


def _technique(name: str, text: str) -> Any:
    if name not in PASSES:
        close = difflib.get_close_matches(name, PASSES, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(PASSES)}"
        raise EdgesmithError(f"unknown pass '{name}' in step '{text}'", hint)
    return PASSES[name]


def _split_args(args: str, text: str) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for part in args.split(","):
        key, equals, value = (piece.strip() for piece in part.partition("="))
        if not key:
            raise EdgesmithError(f"step '{text}' has an empty argument", "separate arguments with single commas")
        if equals:
            keywords[key] = value
        elif keywords:
            raise EdgesmithError(f"step '{text}' has a positional argument after key=value", "put it first")
        else:
            positional.append(key)
    return positional, keywords


def _assign_positional(params_type: type, positional: list[str], text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    chooser = getattr(params_type, "positional_field", None)
    for index, value in enumerate(positional):
        if chooser is not None and index == 0:
            fields[chooser(value)] = value
        elif index < len(params_type.POSITIONAL):
            fields[params_type.POSITIONAL[index]] = value
        else:
            raise EdgesmithError(f"step '{text}' has too many arguments", f"write it like {params_type.EXAMPLE}")
    return fields


def _parse_table(table: Mapping[str, Any]) -> Step:
    fields = dict(table)
    name = fields.pop("pass", None)
    text = "{" + ", ".join(f"{key} = {value!r}" for key, value in table.items()) + "}"
    if not isinstance(name, str):
        raise EdgesmithError(f"chain step {text} has no 'pass' name", 'write e.g. {pass = "prune", sparsity = 0.8}')
    technique = _technique(name, text)
    params = _make_params(technique.params, fields, text)
    changed = {key: value for key, value in dataclasses.asdict(params).items() if value != getattr(technique.params(), key)}
    canonical = name + (":" + ",".join(f"{key}={value}" for key, value in changed.items()) if changed else "")
    return Step(name, params, canonical)


def _make_params(params_type: type, fields: dict[str, Any], text: str) -> Any:
    known = {field.name: field for field in dataclasses.fields(params_type)}
    hints = typing.get_type_hints(params_type)
    values = {}
    for key, raw in fields.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known) or 'none'}"
            raise EdgesmithError(f"step '{text}' has an unknown setting '{key}'", hint)
        values[key] = _coerce(raw, hints[key], key, text, params_type.EXAMPLE)
    try:
        return params_type(**values)
    except EdgesmithError as exc:
        raise EdgesmithError(f"step '{text}': {exc.problem}", exc.fix) from None


def _coerce(raw: Any, hint: Any, key: str, text: str, example: str) -> Any:
    """Turn text (or a TOML value) into the field's type: int, float or str (None-able)."""
    options = typing.get_args(hint) or (hint,)
    if raw is None and type(None) in options:
        return None
    kind = next(option for option in options if option is not type(None))
    if kind is str:
        return str(raw)
    if kind is bool:
        if isinstance(raw, bool) or str(raw).lower() in ("true", "false"):
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
        raise EdgesmithError(f"step '{text}': {key} must be true or false, got '{raw}'", f"write it like {example}")
    try:
        if isinstance(raw, bool):
            raise ValueError
        if kind is int:
            number = float(raw)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return float(raw)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        raise EdgesmithError(f"step '{text}': {key} must be {noun}, got '{raw}'", f"write it like {example}") from None
