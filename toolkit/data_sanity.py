"""Label checks a dataset must pass before anything is trained on it, and the warnings a run
reports: a model trained on one class, or evaluated on classes it never saw, produces numbers
that look like results and mean nothing."""
from __future__ import annotations

import numpy as np

from toolkit.errors import EdgesmithError

IMBALANCE_RATIO = 20  # largest / smallest training class count above which a run warns


def check_labels(name: str, y_train: np.ndarray) -> None:
    """Refuse training labels of a single class: nothing can be learned from them."""
    trained = np.unique(y_train)
    if len(trained) < 2:
        raise EdgesmithError(f"{name}: every training label is class {int(trained[0])}",
                             "provide training samples of at least two classes")


def label_warnings(y_train: np.ndarray, y_test: np.ndarray) -> list[str]:
    """Plain-language warnings about the labels: test classes never seen in training (a user's
    own split may do that on purpose, so it is a finding, not an error), extreme imbalance."""
    classes, counts = np.unique(y_train, return_counts=True)
    warnings = []
    unseen = sorted(set(np.unique(y_test).tolist()) - set(classes.tolist()))
    if unseen:
        warnings.append(f"test classes {unseen} never occur in the training labels: no model can learn them, and "
                        "every accuracy here counts them as errors — split the data so every class has training samples")
    largest, smallest = int(counts.max()), int(counts.min())
    if smallest * IMBALANCE_RATIO < largest:
        rare = int(classes[counts.argmin()])
        warnings.append(f"the training labels are very imbalanced: class {rare} has {smallest} samples, the largest "
                        f"class {largest}; accuracy can look high while that class is never predicted — check "
                        "per-class results")
    return warnings
