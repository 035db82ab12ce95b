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
    if scores.shape[0] == 1:  # one text (an API request): the same steps on its row,
        # without the 2-D indexing's overhead (a third of the time); the same partition
        row = scores[0]
        part = np.argpartition(-row, k - 1)[:k]
        idx = part[np.argsort(-row[part], kind="stable")]
        return idx[None, :], row[idx][None, :]
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


def forced_mask(scores: NDArray[np.floating], min_labels: int) -> NDArray[np.bool_]:
    """The entries the rule always chooses: each row's ``min_labels`` best."""
    forced = np.zeros(scores.shape, dtype=bool)
    if min_labels and scores.shape[1]:
        idx, _ = top_k(scores, min_labels)
        np.put_along_axis(forced, idx, True, axis=1)
    return forced


def _cuts(
    scores: NDArray[np.floating], gold: NDArray[np.bool_], forced: NDArray[np.bool_]
) -> tuple[NDArray[np.floating], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """One label's possible thresholds on some rows (choose its m best free rows, m = 0..n,
    the forced rows always) and the true positives, false positives and misses of each."""
    free = ~forced
    order = np.argsort(-scores[free], kind="stable")
    s, g = scores[free][order], gold[free][order]
    tp = np.concatenate([[0], np.cumsum(g)]) + int((gold & forced).sum())
    fp = np.arange(len(s) + 1) - (tp - int((gold & forced).sum())) + int((~gold & forced).sum())
    fn = int(gold.sum()) - tp
    if len(s) == 0:
        return np.array([np.inf]), tp, fp, fn
    s64 = s.astype(np.float64)
    high = np.concatenate([[s64[0] + 1e-6], s64])
    low = np.concatenate([s64, [s64[-1] - 1e-6]])
    # a cut goes between two different scores only: between tied ones it would choose every
    # row of the tie, not the m counted (saturated scores tie by the thousand)
    at = np.flatnonzero(high > low)
    return 0.5 * (high[at] + low[at]), tp[at], fp[at], fn[at]


def tune_rare_label_cuts(
    scores: NDArray[np.floating],
    gold: NDArray[np.bool_],
    folds: NDArray[np.integer],
    base: NDArray[np.floating],
    max_positives: int,
    min_labels: int,
    shrinkage: float = 0.0,
) -> NDArray[np.float32]:
    """Thresholds for the labels with fewer than ``max_positives`` positive rows by
    LibMultiLabel's micro + macro cuts (Lin et al., CIKM 2023), the others keeping ``base``.

    Labels are taken from the most to the least frequent; in each fold a label's cut
    maximises the micro-F1 of everything decided so far (the frequent labels at ``base``
    first) plus that label's F1 divided by the number of labels so far; its threshold is
    the mean of its fold cuts, which tempers the cut a handful of positives would give.
    Only a fold holding a positive and scored by a model that saw one places a cut (a
    label on one fold's documents keeps ``base``); a cut never splits tied scores. With
    ``shrinkage`` m, a label of n positive rows then moves only n / (n + m) of the way from
    ``base`` to that cut: a cut placed by a few positives, noisy, stays near the global
    threshold, one placed by many is nearly its own.
    """
    gold = np.asarray(gold, dtype=bool)
    positives = gold.sum(axis=0)
    out = np.asarray(base, dtype=np.float32).copy()
    rare = np.flatnonzero((positives < max_positives) & (positives > 0))
    if not len(rare):
        return out
    forced = forced_mask(scores, min_labels)
    common = np.ones(scores.shape[1], dtype=bool)
    common[rare] = False
    chosen = ((scores >= out) | forced)[:, common]
    hits = chosen & gold[:, common]
    totals = np.array(
        [hits.sum(), chosen.sum() - hits.sum(), gold[:, common].sum() - hits.sum()], dtype=float
    )
    n_seen = int(common.sum())
    fold_ids = np.unique(folds)
    for j in rare[np.argsort(-positives[rare], kind="stable")]:
        n_seen += 1
        cuts, counts = [], np.zeros(3)
        for f in fold_ids:
            rows = folds == f
            t, tp, fp, fn = _cuts(scores[rows, j], gold[rows, j], forced[rows, j])
            if not (gold[rows, j].any() and gold[~rows, j].any()):
                # a fold without a positive, or scored by a model that saw none, places no
                # cut: its scores are not those of a model that knows the label
                counts += tp[0], fp[0], fn[0]
                continue
            micro = (
                2
                * (totals[0] + tp)
                / np.maximum(2 * (totals[0] + tp) + totals[1] + fp + totals[2] + fn, 1)
            )
            objective = micro + 2 * tp / np.maximum(2 * tp + fp + fn, 1) / n_seen
            i = len(objective) - 1 - int(np.argmax(objective[::-1]))  # ties: the lowest cut
            cuts.append(t[i])
            counts += tp[i], fp[i], fn[i]
        finite = np.isfinite(cuts)
        if finite.any():
            out[j] = float(np.mean(np.asarray(cuts)[finite]))
        totals += counts
    if shrinkage > 0:
        own = positives[rare] / (positives[rare] + shrinkage)
        out[rare] = own * out[rare] + (1 - own) * np.asarray(base, dtype=np.float32)[rare]
    return out
