"""Content-addressed stage cache inside a run folder.

A stage's key is a hash of everything its output depends on (its input's key, the pass and
its parameters, the target settings that change the bytes). A finished stage writes a marker
listing its files and their hashes *after* the files are in place, so an interrupted stage
has no marker and is simply redone, and a file edited or truncated behind our back is noticed.
"""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

from toolkit.files import sha256_file, stable_hash, write_json

CACHE_DIR = ".cache"


def _version() -> str:
    try:
        return importlib.metadata.version("edgesmith")
    except importlib.metadata.PackageNotFoundError:
        return "source"


class StageCache:
    """Markers under `<run>/.cache/<key>.json` for finished stages."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts: Any) -> str:
        """Stage id; includes the tool's version so an upgrade never reuses stale stages."""
        return stable_hash(_version(), *parts)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored payload if the stage finished and its files are intact, else None."""
        marker = self._marker(key)
        if not self.enabled or not marker.is_file():
            self.misses += 1
            return None
        try:
            entry = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            self.misses += 1
            return None
        for relative, digest in entry["files"].items():
            path = self.run_dir / relative
            if not path.exists() or sha256_file(path) != digest:
                self.misses += 1
                return None
        self.hits += 1
        return entry["payload"]

    def put(self, key: str, payload: dict[str, Any], files: list[Path] = ()) -> None:
        """Record a finished stage; call only once its files are completely written."""
        hashes = {str(Path(f).relative_to(self.run_dir)): sha256_file(f) for f in files}
        write_json(self._marker(key), {"payload": payload, "files": hashes})

    def _marker(self, key: str) -> Path:
        return self.run_dir / CACHE_DIR / f"{key}.json"
