"""A model file is a program and an archive: refuse, before loading it, a SavedModel whose graph
can touch files, run Python or reach the network, and a `.keras` archive that would unpack to
more memory than the machine has (a zip bomb, or just too large).

The checkpoint ops every SavedModel carries (SaveV2, RestoreV2) are allowed: Keras restores the
weights with them.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from toolkit.errors import EdgesmithError
from toolkit.host_memory import available_memory

_READS = "reads files"
_WRITES = "writes files"
HOSTILE_OPS: dict[str, str] = {
    "ReadFile": _READS, "MatchingFiles": "lists files", "ImmutableConst": "maps a file into memory",
    "TFRecordDataset": _READS, "TFRecordDatasetV2": _READS, "TextLineDataset": _READS,
    "FixedLengthRecordDataset": _READS, "FixedLengthRecordDatasetV2": _READS, "CSVDataset": _READS,
    "CSVDatasetV2": _READS, "ExperimentalCSVDataset": _READS, "LoadDataset": _READS,
    "WriteFile": _WRITES, "SaveDataset": _WRITES, "SaveDatasetV2": _WRITES, "CreateSummaryFileWriter": _WRITES,
    "WriteSummary": _WRITES, "WriteRawProtoSummary": _WRITES, "DebugIdentityV2": _WRITES, "DebugIdentityV3": _WRITES,
    "PyFunc": "runs Python code", "PyFuncStateless": "runs Python code", "EagerPyFunc": "runs Python code",
    "DataServiceDataset": "connects to a network service", "DataServiceDatasetV2": "connects to a network service",
    "DataServiceDatasetV3": "connects to a network service", "DataServiceDatasetV4": "connects to a network service",
}
BOMB_RATIO = 100  # float weights compress about 1.1×, pruned ones a few times; a zip bomb 1000× and more
BOMB_MIN_BYTES = 64 << 20  # small members may compress well (configs, all-zero biases)
TRUST_FIX = "if you trust the file, pass --allow-unsafe (allow_unsafe = true) to load it"


def check_model_file(path: Path, allow_unsafe: bool) -> None:
    """Refuse a hostile SavedModel (unless `allow_unsafe`) or an archive that cannot be unpacked safely."""
    if path.is_dir() and not allow_unsafe:
        _refuse_hostile_ops(path)
    elif path.suffix == ".keras" and zipfile.is_zipfile(path):
        _check_archive(path)


def saved_model_ops(folder: Path) -> set[str]:
    """Every op type in the SavedModel's graphs and the functions they call."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    except DecodeError:
        raise EdgesmithError(f"{folder} is corrupt or truncated (its saved_model.pb does not parse)", "re-export the model") from None
    ops: set[str] = set()
    for graph in saved.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def _refuse_hostile_ops(folder: Path) -> None:
    found = sorted(saved_model_ops(folder) & HOSTILE_OPS.keys())
    if found:
        what = sorted({HOSTILE_OPS[op] for op in found})
        raise EdgesmithError(
            f"{folder} holds TensorFlow ops that {' and '.join(what)} ({', '.join(found)}): a SavedModel is a "
            "program, and loading this one could touch more than the model",
            TRUST_FIX + ", or re-export it with model.save('model.keras')",
        )


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # the loader reports a corrupt file in its own words
    for member in members:
        if member.file_size >= BOMB_MIN_BYTES and member.file_size > BOMB_RATIO * max(member.compress_size, 1):
            raise EdgesmithError(
                f"{path} looks like a zip bomb: {member.filename} unpacks {member.file_size // max(member.compress_size, 1)}× "
                f"to {member.file_size / 2**20:.0f} MB",
                "re-save the model with model.save('model.keras'): real weights do not compress that far",
            )
    unpacked, available = sum(member.file_size for member in members), available_memory()
    if available is not None and unpacked > available:
        raise EdgesmithError(
            f"{path} unpacks to {unpacked / 2**20:.1f} MB, more than the {available / 2**20:.1f} MB of memory available",
            "run it on a machine with more memory, or free some",
        )
