"""Errors a user can act on.

Every problem caused by input (a file, a flag, a dataset) is raised as `EdgesmithError`
with a message that names the problem and the fix; the CLI prints it as one line.
"""
from __future__ import annotations

import errno
import shutil
from pathlib import Path

# OS errors that mean "the output cannot be written here", not a bug: one line, exit code 4.
WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "the file size limit was reached", errno.EROFS: "the file system is read-only",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


class EdgesmithError(Exception):
    """A problem with the user's input: `str(error)` is the one-line message to show."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


def first_line(error: BaseException, limit: int = 160) -> str:
    """A short single-line reason from a library exception (converters print pages of MLIR)."""
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def write_failure(error: OSError) -> str | None:
    """The one line for an OS error that stopped a write, naming the path, the free space and the
    fix; None when `error` is not such an error (then it is a bug, reported as one)."""
    reason = WRITE_ERRNOS.get(error.errno)
    if reason is None:
        return None
    path = Path(error.filename) if error.filename else None
    where = f" writing {path}" if path else ""
    free = _free_space(path) if path else None
    space = f" ({free / 2**20:.1f} MB free there)" if free is not None else ""
    fix = ("free some space or pass --output DIR on another disk" if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
           else "pass --output DIR with a folder you can write to")
    return (f"{reason}{where}{space} — {fix}, then run the same command again: "
            "finished stages are kept and nothing half-written is left")


def _free_space(path: Path) -> int | None:
    for folder in [path, *path.parents]:
        if folder.exists():
            try:
                return shutil.disk_usage(folder if folder.is_dir() else folder.parent).free
            except OSError:
                return None
    return None
