"""Target profiles: one TOML file per device, validated into a frozen `Target`.

A target is data, not code. The built-in profiles ship inside the package (`toolkit/profiles/`,
so an installed wheel has them); a user adds a device by dropping `<name>.toml` into a folder
named by `--targets-dir` or EDGESMITH_TARGETS_DIR. Every mistake in such a file is reported
with the file, the key and the fix, because a typo silently ignored would turn into a wrong verdict.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from toolkit.config import PRECISIONS
from toolkit.errors import EdgesmithError

INT8_IO_DTYPES = ("int8", "uint8")
PARTITIONING = ("all_supported", "largest_partition", "first_unsupported")
TENSOR_TYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32",
                "uint32", "int64", "uint64", "bool", "int4", "string", "complex64")
ENV_DIRS = "EDGESMITH_TARGETS_DIR"
TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # also a folder name in the run folder
# key -> (type, required); the accelerator's tensor_types/op_domains depend on the runtime.
_TOP_KEYS: dict[str, tuple[Any, bool]] = {
    "name": (str, True), "summary": (str, True), "runtime": (str, True), "precisions": (list, True),
    "int8_io_dtype": (str, True), "fixed_batch": (bool, True), "measured_on": (str, True),
    "latency_on_device": (bool, True), "accelerator": (dict, True), "ops": (dict, False),
    "custom_ops": (dict, False), "device": (str, False), "ray_resource": (str, False),
}
_ACCELERATOR_KEYS: dict[str, tuple[Any, bool]] = {
    "name": (str, True), "fallback": (str, True), "partitioning": (str, True), "requires_quantized": (bool, False),
    "static_shapes": (bool, False), "max_inner_dims": (int, False), "max_rank": (int, False),
    "param_cache_bytes": (int, False), "compiler": (str, False),
}
_OP_RULE_KEYS: dict[str, tuple[Any, bool]] = {"max_version": ((int, str), True), "tensor_types": (list, False),
                                              "note": (str, False)}


@dataclass(frozen=True)
class OpRule:
    """What an accelerator accepts for one op: versions up to `max_version` (None = any)."""

    max_version: int | None = None
    tensor_types: tuple[str, ...] | None = None  # None: the accelerator's own tensor_types
    note: str = ""


@dataclass(frozen=True)
class Accelerator:
    """The part of the device that runs supported ops, and how it takes a graph."""

    name: str
    fallback: str
    partitioning: str
    tensor_types: tuple[str, ...] = ()
    requires_quantized: bool = False
    static_shapes: bool = False
    max_inner_dims: int | None = None
    max_rank: int | None = None
    param_cache_bytes: int | None = None
    compiler: str | None = None
    op_domains: tuple[str, ...] = ()
    delegate: str | None = None  # LiteRT delegate loaded where the target is timed on its device


@dataclass(frozen=True)
class Target:
    """One deployment target: what the pipeline exports for it and what its accelerator runs."""

    name: str
    summary: str
    runtime: str
    precisions: tuple[str, ...]
    int8_io_dtype: str
    fixed_batch: bool
    measured_on: str
    latency_on_device: bool  # False: timed on a stand-in (the host CPU), so never ranked by latency
    accelerator: Accelerator
    ops: Mapping[str, OpRule] = field(default_factory=dict, hash=False)
    custom_ops: Mapping[str, OpRule] = field(default_factory=dict, hash=False)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)  # the runtime's own keys
    source: Path = field(default=Path(), compare=False)
    device: str | None = None  # "ssh://user@host[:port]": time this target there (toolkit.devices)
    ray_resource: str | None = None  # "device:rpi4": time it on the Ray node advertising this resource


def per_channel(target: Target) -> bool:
    """Whether post-training int8 gives each output channel its own weight scale (the default),
    or `per_channel = false` in the profile: one scale per weight tensor, for accelerators
    without per-channel kernels and for smaller files (a float32 scale and an int64 zero point
    per channel add up on narrow, deep models such as MobileNets)."""
    return bool(target.options.get("per_channel", True))


def per_channel_spec(target: Target, precision: str) -> dict[str, bool]:
    """What `per_channel = false` adds to an int8 export's settings (its cache key); nothing
    otherwise, so other targets' cached exports keep their keys."""
    return {} if per_channel(target) or precision != "int8" else {"per_channel": False}


def derive_profile(base: str, name: str, folder: Path, **keys: bool | int | str) -> str:
    """Write `folder/<name>.toml`: the profile `base` renamed, with top-level `keys` added
    (e.g. per_channel=False); returns `name`, to load with `folder` as the targets_dir."""
    import json

    text = load_target(base).source.read_text(encoding="utf-8")
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())
    text = re.sub(r'^name = ".*"$', f'name = "{name}"', text, count=1, flags=re.M)
    head, table, rest = text.partition("\n[")
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{name}.toml").write_text(f"{head}\n{lines}{table}{rest}", encoding="utf-8")
    return name


def targets_dir() -> Path:
    """The built-in profiles, package data of edgesmith (present in an installed wheel)."""
    return Path(__file__).resolve().parent / "profiles"


def _search_dirs(extra_dir: str | Path = "") -> list[Path]:
    """`extra_dir` (a user's --targets-dir) first, then EDGESMITH_TARGETS_DIR, then the built-ins."""
    found = [Path(p).expanduser() for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
    if extra_dir:
        folder = Path(extra_dir).expanduser()
        if not folder.is_dir():
            problem = "is a file, not a folder" if folder.exists() else "does not exist"
            raise EdgesmithError(f"targets folder {folder} {problem}", "pass a folder of <name>.toml profiles")
        found.insert(0, folder)
    return [*found, targets_dir()]


def _target_files(extra_dir: str | Path = "") -> dict[str, Path]:
    """name -> file; a folder earlier in the search order shadows later ones."""
    found: dict[str, Path] = {}
    for folder in reversed(_search_dirs(extra_dir)):
        if folder.is_dir():
            found.update({path.stem: path for path in sorted(folder.glob("*.toml"))})
    return dict(sorted(found.items()))


def target_names(extra_dir: str | Path = "") -> list[str]:
    """Names of the profiles found, without reading them (cheap enough for `--help`)."""
    return list(_target_files(extra_dir))


def list_targets(extra_dir: str | Path = "") -> list[Target]:
    """Every target profile found, sorted by name; `extra_dir` adds a folder of profiles."""
    return [_load_file(path) for path in _target_files(extra_dir).values()]


def load_target(name_or_path: str, extra_dir: str | Path = "") -> Target:
    """Load a target by name (looked up in `extra_dir`, EDGESMITH_TARGETS_DIR, then the
    built-in profiles) or from a path to a .toml file."""
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise EdgesmithError(f"target file {path} does not exist", "check the path, or pass a target name")
        return _load_file(path)
    files = _target_files(extra_dir)
    if text not in files:
        close = difflib.get_close_matches(text, files, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise EdgesmithError(
            f"unknown target '{text}'",
            f"{hint}available targets: {', '.join(files) or '(none)'}; add {text}.toml to a folder "
            f"given by --targets-dir or ${ENV_DIRS}",
        )
    return _load_file(files[text])


def _load_file(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise EdgesmithError(f"{path}: invalid TOML ({error})", "fix the syntax at that line") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EdgesmithError(f"{path}: cannot read target file ({error})", "check the file") from None
    return _TargetParser(path).parse(data)


def format_target_list(targets: list[Target]) -> str:
    """The `edgesmith targets` table: what each profile exports and where it is measured."""
    rows = [("target", "runtime", "precisions", "accelerator", "latency measured on", "summary")]
    for target in targets:
        rows.append((target.name, target.runtime, ",".join(target.precisions), target.accelerator.name,
                     target.measured_on, target.summary))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    custom = [f"  {t.name}: {t.source}" for t in targets if not is_built_in(t)]
    lines.append(f"\nbuilt-in profiles: {targets_dir()}; add one as <name>.toml in a folder given by --targets-dir or ${ENV_DIRS}")
    return "\n".join(lines + (["profiles from elsewhere:", *custom] if custom else []))


def target_summary(target: Target) -> dict[str, Any]:
    """One profile as data (`edgesmith targets --json`): what it exports and where it is measured."""
    from toolkit.runtimes import runtime_named

    return {
        "name": target.name, "summary": target.summary, "runtime": target.runtime,
        "format": runtime_named(target.runtime).SUFFIX, "precisions": list(target.precisions),
        "int8_io_dtype": target.int8_io_dtype, "fixed_batch": target.fixed_batch, "measured_on": target.measured_on,
        "latency_on_device": target.latency_on_device, "options": dict(target.options),
        "accelerator": target.accelerator.name, "source": str(target.source),
        "built_in": is_built_in(target),
    }


def is_built_in(target: Target) -> bool:
    """Whether the profile is one shipped with edgesmith (not a user's own file)."""
    return target.source.parent == targets_dir()


class _TargetParser:
    """Turns the TOML dict into a Target, naming the file, the key and the fix on any mistake."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> EdgesmithError:
        return EdgesmithError(f"{self.path}: key '{key}' {problem}", fix)

    def parse(self, data: dict[str, Any]) -> Target:
        from toolkit.runtimes import RUNTIMES

        runtime_name = data.get("runtime")
        if not isinstance(runtime_name, str):
            raise self.fail("runtime", "is missing or not a string", f"add runtime = one of: {', '.join(RUNTIMES)}")
        runtime = RUNTIMES[self.choice("runtime", runtime_name, tuple(RUNTIMES))]
        top = self.section(data, "", {**_TOP_KEYS, **runtime.TARGET_KEYS})
        name = top["name"]
        if not TARGET_NAME.match(name):
            raise self.fail("name", f"'{name}' is not a target name (it names a folder of every run)",
                            "use lowercase letters, digits, '-' and '_', and name the file the same (e.g. my-board.toml)")
        if name != self.path.stem:
            raise self.fail("name", f"is '{name}' but the file is {self.path.name}",
                            f"set name = \"{self.path.stem}\", or rename the file {name}.toml")
        accelerator = self.accelerator(top["accelerator"], runtime)
        ops = {op: self.op_rule(f"ops.{op}", value) for op, value in top.get("ops", {}).items()}
        custom = {op: self.op_rule(f"custom_ops.{op}", value) for op, value in top.get("custom_ops", {}).items()}
        if not top["precisions"]:
            raise self.fail("precisions", "is empty", f"list what to export for this device, from: {', '.join(PRECISIONS)}")
        runtime.validate_profile(self.fail, {**top, "ops": ops}, dataclasses.asdict(accelerator))
        return Target(
            name=name, summary=top["summary"], runtime=runtime.NAME,
            precisions=tuple(self.choices("precisions", top["precisions"], PRECISIONS)),
            int8_io_dtype=self.choice("int8_io_dtype", top["int8_io_dtype"], INT8_IO_DTYPES),
            fixed_batch=top["fixed_batch"], measured_on=top["measured_on"],
            latency_on_device=top["latency_on_device"], accelerator=accelerator, ops=ops, custom_ops=custom,
            options={key: top[key] for key in runtime.TARGET_KEYS if key in top}, source=self.path,
            device=self.device(top.get("device")), ray_resource=self.ray_resource(top),
        )

    def ray_resource(self, top: dict[str, Any]) -> str | None:
        resource = top.get("ray_resource")
        if resource is not None and (not resource.strip() or top.get("device")):
            raise self.fail("ray_resource", "is empty or set together with device",
                            "time the target either on a Ray node (ray_resource) or over SSH (device), not both")
        return resource

    def accelerator(self, data: dict[str, Any], runtime: Any) -> Accelerator:
        schema = {**_ACCELERATOR_KEYS, "tensor_types": (list, False), "op_domains": (list, False),
                  **runtime.ACCELERATOR_KEYS}
        table = self.section(data, "accelerator.", schema)
        for key in ("max_inner_dims", "max_rank", "param_cache_bytes"):
            if key in table and table[key] < 1:
                raise self.fail(f"accelerator.{key}", f"is {table[key]}", "use a positive integer, or leave the key out")
        table["partitioning"] = self.choice("accelerator.partitioning", table["partitioning"], PARTITIONING)
        types = table.get("tensor_types", [])
        table["tensor_types"] = tuple(self.choices("accelerator.tensor_types", types, TENSOR_TYPES))
        table["op_domains"] = tuple(self.strings("accelerator.op_domains", table.get("op_domains", [])))
        return Accelerator(**table)

    def device(self, url: str | None) -> str | None:
        from toolkit.devices import check_url

        try:
            return None if url is None else check_url(url)
        except EdgesmithError as error:
            raise self.fail("device", error.problem, error.fix) from None

    def op_rule(self, key: str, value: Any) -> OpRule:
        if isinstance(value, dict):
            table = self.section(value, f"{key}.", _OP_RULE_KEYS)
            types = table.get("tensor_types")
            if types is not None:
                types = tuple(self.choices(f"{key}.tensor_types", types, TENSOR_TYPES))
            return OpRule(self.version(f"{key}.max_version", table["max_version"]), types, table.get("note", ""))
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return OpRule(self.version(key, value))
        raise self.fail(key, f"has a {type(value).__name__} value",
                        'use a max op version (e.g. 3), "any", or { max_version = 3, tensor_types = [...], note = "..." }')

    def version(self, key: str, value: int | str) -> int | None:
        if value == "any":
            return None
        if isinstance(value, int) and value >= 1:
            return value
        raise self.fail(key, f"is {value!r}", 'use a positive op version such as 2, or "any"')

    def section(self, data: dict[str, Any], prefix: str, schema: dict[str, tuple[Any, bool]]) -> dict[str, Any]:
        """Check keys and value types of one table against `schema` (key -> (type, required))."""
        for key in data:
            if key not in schema:
                close = difflib.get_close_matches(key, schema, n=1)
                hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
                raise self.fail(prefix + key, "is unknown", f"{hint}allowed keys: {', '.join(prefix + k for k in schema)}")
        for key, (kind, required) in schema.items():
            if key not in data:
                if required:
                    raise self.fail(prefix + key, "is missing", f"add {prefix}{key} ({_type_name(kind)})")
                continue
            value = data[key]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise self.fail(prefix + key, f"should be {_type_name(kind)}, got {type(value).__name__} {value!r}",
                                f"write it as {_type_name(kind)}")
        return dict(data)

    def choice(self, key: str, value: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise self.fail(key, f"is '{value}'", f"{hint}use one of: {', '.join(allowed)}")
        return value

    def choices(self, key: str, values: list[Any], allowed: tuple[str, ...]) -> list[str]:
        return [self.choice(key, value, allowed) for value in self.strings(key, values)]

    def strings(self, key: str, values: list[Any]) -> list[str]:
        if not all(isinstance(value, str) for value in values):
            raise self.fail(key, f"should be a list of strings, got {values!r}", 'write it as ["a", "b"]')
        return list(values)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names: dict[Any, str] = {str: "a string", bool: "true or false", int: "an integer", list: "a list",
                             dict: "a table", (int, str): 'an integer or "any"', (int, float): "a number"}
    return names.get(kind, str(kind))
