"""Errors a user can act on.

Every problem caused by input (a file, a flag, a dataset) is raised as `EdgesmithError`
with a message that names the problem and the fix; the CLI prints it as one line.
"""
from __future__ import annotations


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
