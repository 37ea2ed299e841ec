"""Content-addressed stage cache inside a run folder.

A stage's key is a hash of everything its output depends on (its input's key, the pass and
its parameters, the target settings that change the bytes). A finished stage writes a marker
listing its files and their hashes *after* the files are in place, so an interrupted stage
has no marker and is simply redone, and a file edited or truncated behind our back is noticed.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolkit.files import sha256_file, stable_hash, write_bytes, write_json
from toolkit.manifest import library_versions

CACHE_DIR = ".cache"


@lru_cache(maxsize=1)
def _versions() -> str:
    """Versions of edgesmith and every library that shapes an artifact or a measurement."""
    return json.dumps(library_versions(), sort_keys=True)


class StageCache:
    """Markers under `<run>/.cache/<key>.json` for finished stages."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.reused: set[str] = set()
        self.built = 0
        self._imported: set[str] = set()  # built by this run elsewhere (Ray), so not "reused"

    @staticmethod
    def key(*parts: Any) -> str:
        """Stage id; includes library versions so an upgrade never reuses stale stages."""
        return stable_hash(_versions(), *parts)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored payload if the stage finished and its files are intact, else None."""
        marker = self._marker(key)
        if not self.enabled or not marker.is_file():
            return None
        try:
            entry = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        for relative, digest in entry["files"].items():
            path = self.run_dir / relative
            if not path.exists() or sha256_file(path) != digest:
                return None
        if key not in self._imported:
            self.reused.add(key)
        return entry["payload"]

    def put(self, key: str, payload: dict[str, Any], files: list[Path] = ()) -> None:
        """Record a finished stage; call only once its files are completely written."""
        hashes = {str(Path(f).relative_to(self.run_dir)): sha256_file(f) for f in files}
        write_json(self._marker(key), {"payload": payload, "files": hashes})
        self.built += 1

    def keys(self) -> list[str]:
        """Every finished stage's key."""
        return sorted(marker.stem for marker in (self.run_dir / CACHE_DIR).glob("*.json"))

    def export_entry(self, key: str) -> dict[str, Any]:
        """A finished stage as data (its marker and its files' bytes), to move it to another run folder."""
        entry = json.loads(self._marker(key).read_text())
        return {"key": key, "marker": entry, "files": {name: (self.run_dir / name).read_bytes() for name in entry["files"]}}

    def import_entries(self, entries: list[dict[str, Any]]) -> None:
        """Take stages finished elsewhere (`export_entry`): every file first, then the markers, so an
        interruption leaves no marker whose files are missing."""
        for entry in entries:
            for name, data in entry["files"].items():
                write_bytes(self.run_dir / name, data)
        for entry in entries:
            write_json(self._marker(entry["key"]), entry["marker"])
            self._imported.add(entry["key"])
            self.built += 1

    def _marker(self, key: str) -> Path:
        return self.run_dir / CACHE_DIR / f"{key}.json"
