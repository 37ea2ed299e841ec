"""Result records: the one reader and writer of results.json.

A `Record` describes one artifact (a variant exported for a target at a precision) and every
figure measured on it. It is a frozen dataclass, and also a read-only mapping, so reports can
index it like the JSON it is stored as. `Record.from_dict` is the only way a stored record
comes back: it validates the keys that every consumer needs, fills fields that older runs did
not write, and migrates older schema versions, so the CLI, reports, `select`, the Python API
and the benchmark scripts all see the same thing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from toolkit.errors import EdgesmithError

SCHEMA_VERSION = 5  # 5: task, mae, rmse, mae_increase_pct, rmse_increase_pct (regression); 4: float_layers, fallback (int8-mixed); 3: latency_error, device_host, device_accuracy, sqnr_db, cosine, raw_input, latency_kind,
# microcontroller memory/NPU fields; 2: latency_on_device, latency_cpu, int8_kernels; 1: the first release
LATENCY_KINDS = ("measured", "estimated")
IDENTITY = ("variant", "target", "format", "precision", "path")
MEASURED = ("latency_ms", "size_bytes", "gzip_bytes")
REQUIRED_BY_TASK = {"classification": ("accuracy", "accuracy_drop_pp"),
                    "regression": ("mae", "rmse", "mae_increase_pct", "rmse_increase_pct")}


@dataclass(frozen=True)
class Record(Mapping):
    """One artifact and its measurements (README: "The run folder" lists every key)."""

    variant: str
    target: str
    format: str
    precision: str
    path: str
    latency_ms: Mapping[str, Any] | None  # None: not measured, `latency_error` says why
    size_bytes: int
    gzip_bytes: int
    task: str = "classification"  # toolkit.task: which of the quality fields below are set
    accuracy: float | None = None  # classification
    accuracy_drop_pp: float | None = None
    mae: float | None = None  # regression, on the test split's targets
    rmse: float | None = None
    mae_increase_pct: float | None = None  # against the full model's; negative: lower error
    rmse_increase_pct: float | None = None
    chain: tuple[str, ...] = ()
    params: int | None = None
    macs: int | None = None
    sha256: str | None = None
    agreement: float | None = None
    sqnr_db: float | None = None  # output fidelity vs the full model; None: identical outputs (infinite)
    cosine: float | None = None
    raw_input: Mapping[str, Any] | None = None  # int8: how raw pixels map to the input tensor
    latency_method: Mapping[str, Any] | None = None
    latency_ms_all_cores: Mapping[str, Any] | None = None
    throughput: Mapping[str, Any] | None = None
    threads: int = 1
    batch: int = 1
    runs: int | None = None
    peak_memory_mb: float | None = None
    latency_measured_on: str = ""
    latency_on_device: bool = True
    latency_kind: str = "measured"  # "estimated": a model of the device (MCU, NPU), never timed here
    latency_cpu: str | None = None
    latency_error: str | None = None
    device_host: str | None = None  # the device's hostname where timed on one (toolkit.devices); None: this machine
    device_accuracy: Mapping[str, Any] | None = None
    compatibility: Mapping[str, Any] = field(default_factory=dict)
    sparsity: float | None = None
    sparsity_per_layer: tuple[Mapping[str, Any], ...] | None = None
    int8_kernels: Mapping[str, Any] | None = None
    fp32_max_abs_diff_vs_tflite: float | None = None
    fp32_crosscheck: Mapping[str, Any] | None = None
    peak_activation_bytes: int | None = None  # static plan of the activation arena (every .tflite)
    arena_estimate_bytes: int | None = None  # microcontrollers: the arena the fit check assumed
    arena_bytes: int | None = None  # microcontrollers: TFLM's recording allocator, on this host
    arena_recorded: Mapping[str, Any] | None = None
    flash_bytes: int | None = None  # microcontrollers: what goes into flash (Vela's file for Ethos-U)
    fits: bool | None = None  # microcontrollers: arena and model within the board's budgets
    npu: Mapping[str, Any] | None = None  # Ethos-U: Vela's NPU/CPU split, memory and time estimate
    int8_crosscheck: Mapping[str, Any] | None = None  # microcontrollers: TFLM vs LiteRT on the file
    float_layers: tuple[str, ...] | None = None  # int8-mixed: the layers kept float
    fallback: Mapping[str, Any] | None = None  # int8-mixed: per-layer int8 error, each fallback step
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """A Record from stored or hand-made data: required keys checked, older schemas migrated."""
        if isinstance(data, Record):
            return data
        task = data.get("task") or "classification"
        if task not in REQUIRED_BY_TASK:
            raise EdgesmithError(f"a result record has task '{task}'", f"use one of: {', '.join(REQUIRED_BY_TASK)}")
        by_task = REQUIRED_BY_TASK[task]
        missing = [key for key in (*IDENTITY, *by_task, *MEASURED)
                   if key not in data or (key in by_task and data[key] is None)]
        if missing:
            raise EdgesmithError(f"a result record lacks {', '.join(missing)}", "re-run `edgesmith run` to rebuild it")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise EdgesmithError(f"a result record has unknown keys {', '.join(unknown)}",
                                 "it was written by a newer edgesmith: upgrade, or re-run `edgesmith run`")
        values = dict(data)
        values["latency_on_device"] = latency_on_device(values)
        if values.setdefault("latency_kind", "measured") not in LATENCY_KINDS:
            raise EdgesmithError(f"a result record has latency_kind '{values['latency_kind']}'",
                                 f"use one of: {', '.join(LATENCY_KINDS)}")
        values["schema_version"] = SCHEMA_VERSION
        for key in ("chain", "notes"):
            values[key] = tuple(values.get(key) or ())
        if values.get("float_layers") is not None:
            values["float_layers"] = tuple(values["float_layers"])
        if values.get("sparsity_per_layer") is not None:
            values["sparsity_per_layer"] = tuple(values["sparsity_per_layer"])
        return cls(**values)

    def with_fields(self, **changes: Any) -> Record:
        """A copy with some fields changed (records are immutable once measured)."""
        return dataclasses.replace(self, **changes)


_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


def latency_on_device(record: Mapping[str, Any]) -> bool:
    """Whether the record's latency was timed on the device itself; schema 1 records said it only
    in words ("host CPU — not GPU latency")."""
    if "latency_on_device" in record:
        return bool(record["latency_on_device"])
    return not re.search(r"\bnot\b", record.get("latency_measured_on") or "")


def as_records(items: Any) -> list[Record]:
    """Records from Records or plain dicts (e.g. hand-made in a notebook), validated."""
    return [Record.from_dict(item) for item in items]


def load_results(run_dir: Path, wait_s: float = 10.0) -> tuple[list[Record], dict[str, Any]]:
    """(records, run info) of a finished `edgesmith run` folder, with clear errors.

    A run writes results.json, then run.json, each atomically; run.json names its results.json
    by hash, so a reader between the two renames sees a mismatch and reads again (for up to
    `wait_s`) rather than pairing one run's records with another run's info."""
    run_dir = Path(run_dir)
    results, info = run_dir / "results.json", run_dir / "run.json"
    if not results.is_file() or not info.is_file():
        raise EdgesmithError(f"{run_dir} has no results.json/run.json", "pass the folder of a finished `edgesmith run`")
    deadline = time.monotonic() + wait_s
    while True:
        run_info = _read_json(info)
        if not isinstance(run_info, dict):
            raise EdgesmithError(f"{info} is not a run's info (a JSON object)", "re-run `edgesmith run` to rebuild it")
        try:
            text = results.read_bytes()
        except OSError as exc:
            raise EdgesmithError(f"{results} is unreadable ({exc.strerror})", "re-run `edgesmith run` to rebuild it") from None
        stored = _read_json(results, text)
        expected = run_info.get("results_sha256")
        if expected in (None, hashlib.sha256(text).hexdigest()):
            break
        if time.monotonic() > deadline:
            raise EdgesmithError(f"{results} and {info.name} are from different runs (a run is writing them now?)",
                                 "wait for the run to finish, or re-run `edgesmith run` to rebuild them")
        time.sleep(0.05)
    if not isinstance(stored, list) or not all(isinstance(item, dict) for item in stored):
        raise EdgesmithError(f"{results} is not a list of result records", "re-run `edgesmith run` to rebuild it")
    try:
        return as_records(stored), run_info
    except (TypeError, EdgesmithError) as exc:
        problem = exc.problem if isinstance(exc, EdgesmithError) else str(exc)
        raise EdgesmithError(f"{results}: {problem}", "re-run `edgesmith run` to rebuild it") from None


def _read_json(path: Path, text: bytes | None = None) -> Any:
    """A run file's JSON (from `text` when already read), or an error naming that file."""
    try:
        return json.loads(path.read_bytes() if text is None else text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgesmithError(f"{path} is unreadable ({exc})", "re-run `edgesmith run` to rebuild it") from None


def records_json(records: list[Record]) -> list[dict[str, Any]]:
    """What results.json stores: one dict per record, schema_version in each."""
    return [record.to_dict() for record in records]
