"""Open a model file someone else made in a child process first.

A malformed file can crash a native runtime outright (a segfault has no Python exception to
catch) or hang it; run in a child, that becomes one line naming the file instead of a dead or
stuck edgesmith. Our own artifacts skip this: they were just written by a converter.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from toolkit.errors import EdgesmithError

TIMEOUT_S = 120
_OPEN_AND_INVOKE = """
import sys
from pathlib import Path
import numpy as np
from toolkit.benchmark.runners import open_runner
runner = open_runner(Path(sys.argv[1]))
runner.set_input(np.zeros((1, *runner.input_shape), np.float32))
runner.invoke()
"""


def survives_loading(path: Path) -> None:
    """Load `path` and run one inference in a child; raise if the runtime crashed or hung there.

    A file the runtime refuses with an ordinary error passes: the caller opens it and reports
    that error in its own words."""
    try:
        child = subprocess.run([sys.executable, "-c", _OPEN_AND_INVOKE, str(path)], capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgesmithError(f"the runtime hung loading {path} (no answer in {TIMEOUT_S} s)",
                             "re-export the file: it is malformed in a way the runtime does not check") from None
    if child.returncode < 0:
        raise EdgesmithError(f"the runtime crashed loading {path} ({signal.Signals(-child.returncode).name})",
                             "re-export the file: it is malformed in a way the runtime does not check")
