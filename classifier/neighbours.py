"""Nearest training documents as a second opinion beside the linear model.

Tags come in sets that recur (a question bank's knowledge points, a thesaurus's related
terms): the tags of the training documents most similar to a text are evidence the
one-vs-rest model, which sees each label alone, does not use. ``NeighbourIndex`` keeps the
unit TF-IDF vectors of the training documents and their tags; a text's neighbour score for
a label is the similarity-weighted share of its ``k`` nearest documents carrying it, in
[0, 1] like the calibrated linear scores it is blended with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

# rows scored at once: bounds the dense rows × documents similarity block
CHUNK_ROWS = 256


def unit_rows(x: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm, as a float32 copy (zero rows stay zero)."""
    from classifier.features import normalize_rows

    return normalize_rows(sp.csr_matrix(x, dtype=np.float32, copy=True))


@dataclass
class NeighbourIndex:
    """Training documents (unit vectors, stored features × documents) and their tags."""

    docs_t: sp.csr_matrix  # n_features × n_docs, float32
    tags: sp.csr_matrix  # n_docs × n_labels, float32 indicator
    k: int

    @classmethod
    def build(cls, x_docs: sp.spmatrix, tags: sp.spmatrix, k: int) -> NeighbourIndex:
        return cls(
            docs_t=sp.csr_matrix(unit_rows(x_docs).T, dtype=np.float32),
            tags=sp.csr_matrix(tags, dtype=np.float32),
            k=k,
        )

    @property
    def n_docs(self) -> int:
        return int(self.docs_t.shape[1])

    def scores(self, x: sp.spmatrix) -> NDArray[np.float32]:
        """Neighbour scores, one row per row of ``x`` (TF-IDF features), one column per label."""
        x = unit_rows(x)
        out = np.zeros((x.shape[0], self.tags.shape[1]), dtype=np.float32)
        k = min(self.k, self.n_docs)
        if k == 0:
            return out
        for start in range(0, x.shape[0], CHUNK_ROWS):
            sim = (x[start : start + CHUNK_ROWS] @ self.docs_t).toarray()
            rows = len(sim)
            nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            weight = np.take_along_axis(sim, nearest, axis=1).clip(min=0.0)
            picked = sp.csr_matrix(
                (weight.ravel(), nearest.ravel(), np.arange(0, rows * k + 1, k)),
                shape=(rows, self.n_docs),
            )
            total = weight.sum(axis=1, keepdims=True)
            votes = (picked @ self.tags).toarray()
            out[start : start + rows] = np.divide(
                votes, total, out=np.zeros_like(votes), where=total > 0
            )
        return out
