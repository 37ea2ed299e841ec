"""One run per folder at a time: an exclusive lock on `<run>/.lock`.

Two runs on one folder would interleave their writes, and the records of one would describe
the other's files. The lock is an `fcntl.flock`, which the kernel releases when its holder
exits however it exits (kill -9 too), so a lock left by a dead process is never a problem: the
next run takes it over and says whose it was. The holder (pid, host, since) is written into
the lock file so a waiting run can say who it waits for.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

from toolkit.errors import EdgesmithError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: Path, wait: bool = True, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the run folder's lock for the block; wait for it, or with `wait=False` fail at once."""
    path = Path(run_dir) / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise EdgesmithError(f"another edgesmith run is using {run_dir} ({holder})",
                                     "wait for it to finish, drop --no-wait to wait for it, or pass --name/--output "
                                     "for a separate run folder") from None
            log(f"[lock] {run_dir} is in use ({holder}); waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        previous = _holder(path)
        if previous != "holder unknown":
            log(f"[lock] took over {run_dir} (last {previous}, no longer running)")
        _write_holder(handle)
        yield
    finally:
        with contextlib.suppress(OSError):
            handle.truncate(0)
        handle.close()  # closing releases the flock


def _write_holder(handle) -> None:
    handle.seek(0)
    handle.truncate(0)
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}))
    handle.flush()


def _holder(path: Path) -> str:
    """'pid 123 on host since 2026-…' from the lock file, or 'holder unknown'."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
