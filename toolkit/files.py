"""Atomic file writes and content hashes.

An interrupted run must never leave a half-written artifact that a later run mistakes for a
finished one, so everything is written to a temporary sibling and renamed into place.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to `final`; rename it onto `final` only if the block succeeds.

    Works for files and for directories (e.g. a SavedModel): whatever the block creates at the
    temporary path is moved into place in one rename.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp = tmp_dir / final.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (fsync, then rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def link_or_copy(source: Path, dest: Path) -> None:
    """`dest` as a hard link to `source` (identical artifacts for two targets take the disk
    space once), or a copy where the file system cannot link; atomic either way."""
    with atomic_path(dest) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def is_side_file(name: str, stem: str) -> bool:
    """Whether `name` is a file a runtime writes next to the artifact `stem` and names after it:
    `x__int8.cc`/`.h`, `x__int8_vela.tflite`, Vela's `x__int8_summary_*.csv`, `x__int8_edgetpu.tflite`
    (or the artifact itself). Artifact names end in their precision, so no other artifact matches."""
    return name.startswith((f"{stem}.", f"{stem}_"))


def side_files(artifact: Path) -> list[Path]:
    """The side files (`is_side_file`) next to `artifact`, without the artifact itself."""
    artifact = Path(artifact)
    return sorted(path for path in artifact.parent.iterdir()
                  if path != artifact and path.is_file() and is_side_file(path.name, artifact.stem))


def float32_npy(array: Any) -> bytes:
    """`array` as float32 .npy bytes (what device_bench reads with --inputs, and the stored
    reference outputs)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32))
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def json_text(payload: Any) -> str:
    """`payload` as the indented JSON every file here is written in."""
    return json.dumps(payload, indent=2, sort_keys=False) + "\n"


def write_json(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON atomically."""
    write_text(path, json_text(payload))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, or of every file under a directory in a stable order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def gzip_size(path: Path) -> int:
    """Size of the file after gzip -9: what an app download or OTA update actually costs."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def stable_hash(*parts: Any) -> str:
    """Short content id for cache keys: hash of the JSON form of `parts`."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
