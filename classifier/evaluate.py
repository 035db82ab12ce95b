"""Multi-label metrics: micro/macro P/R/F1 under the decision rule, P@k, nDCG@5, per label.

Conventions (stated in every report): P@k divides the hits among the k best labels by k
(not by the number of labels returned); macro averages are over the labels that occur in the
gold standard; a gold label the model does not know is a miss (a false negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from classifier.decision import Threshold, at, select, top_k

RANK_KS = (1, 3, 5)
NDCG_K = 5


def hits_matrix(
    idx: NDArray[np.intp], gold: Sequence[Sequence[str]], labels: Sequence[str]
) -> NDArray[np.bool_]:
    """``hits[i, j]``: is the label ranked j-th for row i one of row i's gold labels?"""
    index = {label: i for i, label in enumerate(labels)}
    hits = np.zeros(idx.shape, dtype=bool)
    for row, tags in enumerate(gold):
        gold_ids = {index[t] for t in tags if t in index}
        if gold_ids:
            hits[row] = np.isin(idx[row], list(gold_ids))
    return hits


def evaluate_scores(
    scores: NDArray[np.floating],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
    threshold: Threshold,
    min_labels: int = 1,
    max_labels: int = 10,
) -> dict[str, Any]:
    """Score a prediction matrix against gold tag lists; return a JSON-ready dict."""
    n = len(gold)
    depth = max(max_labels, max(RANK_KS), NDCG_K)
    idx, top = top_k(scores, depth)
    hits = hits_matrix(idx, gold, labels)
    chosen = select(top[:, :max_labels], at(threshold, idx[:, :max_labels]), min_labels)
    t = np.asarray(threshold)
    result: dict[str, Any] = {
        "n": n,
        "threshold": float(t) if t.ndim == 0 else "per label",
    }
    result.update(_set_metrics(idx[:, :max_labels], chosen, gold, labels))
    for k in RANK_KS:
        result[f"p@{k}"] = float(hits[:, :k].sum() / (k * n)) if n else 0.0
    result[f"ndcg@{NDCG_K}"] = _ndcg(hits[:, :NDCG_K], gold)
    return result


def _set_metrics(
    idx: NDArray[np.intp],
    chosen: NDArray[np.bool_],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
) -> dict[str, Any]:
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    support: dict[str, int] = {}
    n_pred_labels = 0
    for row, tags in enumerate(gold):
        predicted = {labels[i] for i in idx[row][chosen[row]]}
        n_pred_labels += len(predicted)
        gold_set = set(tags)
        for t in gold_set:
            support[t] = support.get(t, 0) + 1
        for t in predicted:
            if t in gold_set:
                tp[t] = tp.get(t, 0) + 1
            else:
                fp[t] = fp.get(t, 0) + 1
    per_label = {}
    for t in sorted(set(support) | set(fp)):
        per_label[t] = _prf(tp.get(t, 0), fp.get(t, 0), support.get(t, 0) - tp.get(t, 0))
        per_label[t]["support"] = support.get(t, 0)
    all_tp, all_fp = sum(tp.values()), sum(fp.values())
    all_fn = sum(support.values()) - all_tp
    micro = _prf(all_tp, all_fp, all_fn)
    in_gold = [per_label[t] for t in support]
    macro = {
        m: float(np.mean([p[m] for p in in_gold])) if in_gold else 0.0
        for m in ("precision", "recall", "f1")
    }
    return {
        "micro": micro,
        "macro": macro,
        "labels_per_item": n_pred_labels / len(gold) if len(gold) else 0.0,
        "per_label": per_label,
    }


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def _ndcg(hits: NDArray[np.bool_], gold: Sequence[Sequence[str]]) -> float:
    if not len(gold):
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal_n = np.minimum([len(set(g)) for g in gold], hits.shape[1])
    idcg = np.cumsum(discounts)[np.maximum(ideal_n - 1, 0)] * (ideal_n > 0)
    return float(np.mean(np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)))
