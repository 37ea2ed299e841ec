"""Label checks a dataset must pass before anything is trained on it, and the warnings a run
reports: a model trained on one class, or evaluated on classes it never saw, produces numbers
that look like results and mean nothing."""
from __future__ import annotations

import numpy as np

from toolkit.errors import EdgesmithError

IMBALANCE_RATIO = 20  # largest / smallest training class count above which a run warns


def check_labels(name: str, y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Refuse training labels of a single class, and test classes absent from training."""
    trained = np.unique(y_train)
    if len(trained) < 2:
        raise EdgesmithError(f"{name}: every training label is class {int(trained[0])}",
                             "provide training samples of at least two classes")
    unseen = sorted(set(np.unique(y_test).tolist()) - set(trained.tolist()))
    if unseen:
        raise EdgesmithError(
            f"{name}: test classes {unseen} never occur in the training labels, so no model can learn them",
            "split the data so every class has training samples",
        )


def label_warnings(y_train: np.ndarray) -> list[str]:
    """Plain-language warnings about the training labels (extreme class imbalance)."""
    classes, counts = np.unique(y_train, return_counts=True)
    largest, smallest = int(counts.max()), int(counts.min())
    if smallest * IMBALANCE_RATIO >= largest:
        return []
    rare = int(classes[counts.argmin()])
    return [f"the training labels are very imbalanced: class {rare} has {smallest} samples, the largest class "
            f"{largest}; accuracy can look high while that class is never predicted — check per-class results"]
