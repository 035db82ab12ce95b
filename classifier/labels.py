"""Which tags become labels, and the label indicator matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def choose_labels(
    doc_tags: Sequence[tuple[str, ...]], min_docs: int, policy: str
) -> tuple[list[str], dict[str, int]]:
    """Labels to learn, by document frequency (ties by name); and the rare ones dropped.

    Under ``policy = "drop"`` a tag on fewer than ``min_docs`` documents is dropped (and
    returned with its count); under ``"keep"`` every tag is a label.
    """
    counts = Counter(t for tags in doc_tags for t in tags)
    ordered = sorted(counts, key=lambda t: (-counts[t], t))
    if policy == "keep":
        return ordered, {}
    kept = [t for t in ordered if counts[t] >= min_docs]
    dropped = {t: counts[t] for t in ordered if counts[t] < min_docs}
    return kept, dropped


def label_matrix(tags: Sequence[Sequence[str]], labels: Sequence[str]) -> sp.csc_matrix:
    """Indicator matrix (rows × labels); int32, never int8 (ids wrap beyond 127 labels)."""
    index = {t: j for j, t in enumerate(labels)}
    rows, cols = [], []
    for i, ts in enumerate(tags):
        for t in ts:
            if t in index:
                rows.append(i)
                cols.append(index[t])
    data = np.ones(len(rows), dtype=np.int32)
    return sp.csc_matrix((data, (rows, cols)), shape=(len(tags), len(labels)), dtype=np.int32)
