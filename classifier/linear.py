"""One-vs-rest linear weights: fit one binary model per label, stack them, score in one product."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier import learners
from classifier.progress import ProgressHook, no_progress

if TYPE_CHECKING:
    from classifier.config import TrainingConfig

# Largest dense block of weights made while scoring, in floats (32 MB): bounds a batch's memory
# (an API batch of 256 paragraphs stays far below it).
MAX_BLOCK_FLOATS = 8 * 1024 * 1024
# A multiply-add in a sparse @ sparse product costs about this many in sparse @ dense
# (measured on tiku with character n-grams; BENCHMARKS.md §4).
SPARSE_OP_COST = 4


@dataclass(frozen=True)
class LinearWeights:
    """Stacked weights (features × labels, sparse float32) and one intercept per label."""

    coef: sp.csr_matrix
    intercept: NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.coef.shape[1] != len(self.intercept):
            raise ValueError("one intercept per label column")

    @property
    def n_labels(self) -> int:
        return int(self.coef.shape[1])

    def decision(self, x: sp.csr_matrix) -> NDArray[np.float32]:
        """Raw linear scores ``X @ W + b`` (``sparse_dense_product``, no loop over labels)."""
        out = sparse_dense_product(x, self.coef)
        out += self.intercept
        return out


def sparse_dense_product(
    x: sp.csr_matrix, w: sp.csr_matrix, max_floats: int = MAX_BLOCK_FLOATS
) -> NDArray[np.float32]:
    """``(x @ w).toarray()``, by whichever of two ways does less work for these rows.

    When the rows of ``w`` that ``x`` uses are dense (word features of an unpruned model),
    a sparse @ sparse product builds a sparse result that is nearly dense, at 3-4 times the
    cost of the sums; gathering those weight rows into a dense block and doing one sparse @
    dense product gives the same sums (blocks over ``max_floats`` are made for halves of the
    batch). When they are sparse (pruned weights, many character n-grams), the sparse @
    sparse product does a fraction of the multiply-adds of the dense block and wins.
    """
    sparse_ops = int((w.indptr[x.indices + 1] - w.indptr[x.indices]).sum())
    if SPARSE_OP_COST * sparse_ops < x.nnz * w.shape[1]:
        return np.asarray((x @ w).toarray(), dtype=np.float32)
    used, position = np.unique(x.indices, return_inverse=True)
    if len(used) * w.shape[1] > max_floats and x.shape[0] > 1:
        half = x.shape[0] // 2
        return np.vstack(
            [
                sparse_dense_product(x[:half], w, max_floats),
                sparse_dense_product(x[half:], w, max_floats),
            ]
        )
    compact = sp.csr_matrix(
        (x.data, position.astype(np.int32).ravel(), x.indptr), shape=(x.shape[0], len(used))
    )
    return np.asarray(compact @ w[used].toarray(), dtype=np.float32)


def fit_one_vs_rest(
    x: sp.csr_matrix,
    y: sp.csc_matrix,
    cfg: TrainingConfig,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
) -> LinearWeights:
    """One binary model per label column of ``y`` (in parallel threads), stacked.

    liblinear releases the GIL, so threads share ``x`` without copies. Each label's weights
    are pruned to |w| > ``cfg.prune_below`` as they arrive, so memory holds one dense vector
    per running job rather than one per label. A label on every row needs no model: weight
    zero, intercept 1; nor does a label on no row (a rare label whose documents are all held
    out of a cross-validation fold): weight zero, intercept -1.
    """
    from joblib import Parallel, delayed
    from sklearn.exceptions import ConvergenceWarning

    x64 = sp.csr_matrix(x, dtype=np.float64)
    n_features, n_labels = x.shape[1], y.shape[1]
    learner = learners.get(cfg.learner)

    def fit_one(j: int) -> tuple[int, NDArray[np.intp], NDArray[np.float32], float]:
        target = y[:, j].toarray().ravel()
        if target.all() or not target.any():
            bias = 1.0 if target.all() else -1.0
            return j, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32), bias
        estimator = learner.make(cfg, x.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(x64, target)
        w = estimator.coef_.ravel()
        keep = np.flatnonzero(np.abs(w) > cfg.prune_below)
        return j, keep, w[keep].astype(np.float32), float(estimator.intercept_[0])

    advance = progress("fitting", n_labels)
    rows, cols, vals = [], [], []
    intercept = np.zeros(n_labels, dtype=np.float32)
    for j, keep, w, b in Parallel(n_jobs=jobs, backend="threading", return_as="generator")(
        delayed(fit_one)(j) for j in range(n_labels)
    ):
        rows.append(keep)
        cols.append(np.full(len(keep), j, dtype=np.int32))
        vals.append(w)
        intercept[j] = b
        advance(1)
    coef = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_features, n_labels),
        dtype=np.float32,
    )
    return LinearWeights(coef, intercept)
