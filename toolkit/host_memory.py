"""How much memory this machine can still give: checked before work that would otherwise be
killed half-way (decoding a large image folder, unpacking a model archive)."""
from __future__ import annotations

from pathlib import Path


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (Linux); None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
