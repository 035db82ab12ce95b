"""Scores in [0, 1]: one sigmoid fitted to the linear decision values of held-out rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

# the (row, label) pairs a sigmoid is fitted on, at most (a random sample beyond)
MAX_CALIBRATION_PAIRS = 2_000_000


def sigmoid(x: NDArray[np.floating]) -> NDArray[np.floating]:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass(frozen=True)
class Calibration:
    """``score = 1 / (1 + exp(-(a * decision + b)))``; the identity sigmoid by default."""

    a: float = 1.0
    b: float = 0.0

    def apply(self, decision: NDArray[np.floating]) -> NDArray[np.float32]:
        return np.asarray(sigmoid(self.a * decision + self.b), dtype=np.float32)


def fit_calibration(decision: NDArray[np.floating], gold: sp.spmatrix, seed: int) -> Calibration:
    """Fit one sigmoid to all (row, label) decision values against the gold indicators."""
    from sklearn.linear_model import LogisticRegression

    d = decision.ravel()
    g = np.asarray(gold.toarray(), dtype=bool).ravel()
    if len(d) > MAX_CALIBRATION_PAIRS:
        pick = np.random.default_rng(seed).choice(len(d), MAX_CALIBRATION_PAIRS, replace=False)
        d, g = d[pick], g[pick]
    if g.all() or not g.any():
        return Calibration()
    lr = LogisticRegression(C=1e4).fit(d.reshape(-1, 1), g)
    return Calibration(float(lr.coef_[0, 0]), float(lr.intercept_[0]))
