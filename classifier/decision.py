"""The decision rule that turns scores into tags, and the tuning of its thresholds.

Rule: take the labels scoring at least their threshold, at most ``max_labels`` of them (the
best ones), and at least ``min_labels`` (the best ones) even when none reaches it. A threshold
is one number for all labels, one per label (a vector), or one per row and label (a matrix,
used to score thresholds tuned elsewhere).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

THRESHOLD_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


def top_k(scores: NDArray[np.floating], k: int) -> tuple[NDArray[np.intp], NDArray[np.floating]]:
    """Return the indices and scores of the ``k`` best labels per row, best first."""
    k = min(k, scores.shape[1])
    if k == 0:
        empty = np.zeros((scores.shape[0], 0))
        return empty.astype(np.intp), empty
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1)


Threshold = float | NDArray[np.floating]


def at(threshold: Threshold, idx: NDArray[np.intp]) -> float | NDArray[np.floating]:
    """The thresholds that apply to the labels ``idx`` (rows × k) picked from each row."""
    t = np.asarray(threshold)
    if t.ndim == 0:
        return float(t)
    if t.ndim == 1:
        return t[idx]
    return np.take_along_axis(t, idx, axis=1)


def select(
    top_scores: NDArray[np.floating], threshold: float | NDArray[np.floating], min_labels: int
) -> NDArray[np.bool_]:
    """Mask of the chosen entries among sorted top-k scores (thresholds already ``at`` them)."""
    forced = np.arange(top_scores.shape[1]) < min_labels
    return (top_scores >= threshold) | forced[None, :]


def decide(
    scores: NDArray[np.floating], threshold: Threshold, min_labels: int, max_labels: int
) -> list[list[tuple[int, float]]]:
    """Apply the rule to each row; return (label index, score) pairs, best first."""
    idx, top = top_k(scores, max_labels)
    mask = select(top, at(threshold, idx), min_labels)
    # as Python lists first: iterating NumPy rows makes a NumPy scalar of every entry
    return [
        [(i, s) for i, s, m in zip(ri, rs, rm, strict=True) if m]
        for ri, rs, rm in zip(idx.tolist(), top.tolist(), mask.tolist(), strict=True)
    ]


def tune_threshold(
    top_scores: NDArray[np.floating],
    top_hits: NDArray[np.bool_],
    n_gold: int,
    min_labels: int,
    grid: NDArray[np.floating] = THRESHOLD_GRID,
) -> tuple[float, float]:
    """Pick the threshold with the best micro-F1 on held-out rows; return (threshold, F1).

    ``top_hits[i, j]`` says whether the j-th best label of row i is a gold label; ``n_gold``
    counts all gold labels, including ones the model cannot predict.
    """
    best_t, best_f1 = 0.5, -1.0
    for t in grid:
        chosen = select(top_scores, float(t), min_labels)
        tp = int((chosen & top_hits).sum())
        n_pred = int(chosen.sum())
        f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


def tune_label_thresholds(
    scores: NDArray[np.floating],
    gold: NDArray[np.bool_],
    fallback: float,
    min_positives: int,
    grid: NDArray[np.floating] = THRESHOLD_GRID,
) -> NDArray[np.float32]:
    """One threshold per label maximising that label's F1 on held-out rows.

    Labels with fewer than ``min_positives`` positive rows keep ``fallback`` (too few examples
    to place a threshold); so do labels whose best F1 is zero.
    """
    gold = np.asarray(gold, dtype=bool)
    positives = gold.sum(axis=0)
    best_f1 = np.zeros(scores.shape[1])
    best_t = np.full(scores.shape[1], fallback, dtype=np.float32)
    for t in grid:
        chosen = scores >= t
        tp = (chosen & gold).sum(axis=0)
        f1 = 2 * tp / np.maximum(chosen.sum(axis=0) + positives, 1)
        better = f1 > best_f1 + 1e-12
        best_f1[better] = f1[better]
        best_t[better] = t
    best_t[positives < min_positives] = fallback
    return best_t
