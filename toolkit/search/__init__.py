"""`edgesmith search`: a multi-objective Optuna search over compression chains and precisions
for one target, every trial measured by the run's own cached stages (the optional `search` extra).

space.py reads the `[search]` table, evaluate.py turns trials into records, study.py runs the
Optuna study, summary.py writes what it found. Optuna is imported only when a search runs.
"""
from __future__ import annotations

from typing import Any

from toolkit.errors import EdgesmithError

INSTALL_HINT = 'install the extra: pip install "edgesmith[search]"'


def require_optuna() -> Any:
    """The `optuna` module, or a one-line error naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise EdgesmithError("`edgesmith search` needs Optuna, which is not installed", INSTALL_HINT) from None
    return optuna
