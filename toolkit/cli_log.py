"""Where the command's messages go: stderr through `logging`, so stdout carries only results.

`-q` keeps warnings and errors, `-v` adds debug messages. On a terminal, messages and the
run's progress bar share one rich console (rich comes with TensorFlow's Keras); elsewhere
(pipes, CI logs) every message and every finished artifact is one plain line.
"""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

LOGGER = "toolkit"


class _PlainFormatter(logging.Formatter):
    """Progress messages as they are; other levels prefixed ("debug: …", "warning: …")."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname.lower()}: {message}"


def configure_logging(level: int) -> None:
    """Send every `toolkit.*` logger to the current stderr at `level` (replacing earlier setup)."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    stream = sys.stderr
    if stream.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(file=stream), show_time=False, show_path=False, show_level=level < logging.INFO, markup=False
        )
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_PlainFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


@contextmanager
def artifact_progress() -> Iterator[Callable[[int, int], None]]:
    """A `progress(finished, planned)` callback for `pipeline.run`: a bar with the artifact count
    and ETA on a terminal, one line per artifact otherwise, nothing with `--quiet`."""
    logger = logging.getLogger(LOGGER)
    console = getattr(logger.handlers[0], "console", None) if logger.handlers else None
    if not logger.isEnabledFor(logging.INFO):
        yield lambda finished, planned: None
    elif console is not None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("artifacts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn())
        # ETA from the whole run's pace: one slow stage (training a student) must not blank it
        with Bar(*columns, console=console, redirect_stdout=False, speed_estimate_period=24 * 3600) as bar:
            task = bar.add_task("artifacts", total=None)
            yield lambda finished, planned: bar.update(task, completed=finished, total=planned)
    else:
        yield _PlainProgress(logging.getLogger(f"{LOGGER}.progress"))


class _PlainProgress:
    """One line per finished artifact with a linear ETA, for logs that are not a terminal."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.started = time.monotonic()

    def __call__(self, finished: int, planned: int) -> None:
        eta = ""
        if 0 < finished < planned:
            left = (time.monotonic() - self.started) / finished * (planned - finished)
            eta = f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {left:.0f} s left"
        self.logger.info(f"[{finished}/{planned} artifacts]{eta}")
