"""The tuned thresholds of a model, and how they are chosen on held-out rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from classifier.decision import (
    Threshold,
    top_k,
    tune_label_thresholds,
    tune_rare_label_cuts,
    tune_threshold,
)
from classifier.evaluate import evaluate_scores, hits_matrix
from classifier.labels import label_matrix

if TYPE_CHECKING:
    from classifier.config import TrainingConfig

LEVELS = ("paragraph", "document")


@dataclass(frozen=True, eq=False)
class Thresholds:
    """One threshold per level, and per label where tuned so (a vector in label order)."""

    level: Mapping[str, float] = field(default_factory=lambda: {"paragraph": 0.5, "document": 0.5})
    per_label: Mapping[str, NDArray[np.float32]] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """The same thresholds: the same levels and, level by level, the same vectors."""
        if not isinstance(other, Thresholds):
            return NotImplemented
        return (
            dict(self.level) == dict(other.level)
            and self.per_label.keys() == other.per_label.keys()
            and all(np.array_equal(v, other.per_label[k]) for k, v in self.per_label.items())
        )

    def of(self, level: str) -> Threshold:
        """The threshold(s) of a level: per label when tuned so, else one number."""
        vector = self.per_label.get(level)
        return vector if vector is not None else self.level[level]

    def carried(self, old_labels: Sequence[str], new_labels: Sequence[str]) -> Thresholds:
        """The same thresholds for another label list, by name; new labels get the level's."""
        per_label = {}
        for level, vector in self.per_label.items():
            by_name = dict(zip(old_labels, vector, strict=True))
            fallback = self.level[level]
            per_label[level] = np.array(
                [by_name.get(t, fallback) for t in new_labels], dtype=np.float32
            )
        return Thresholds(dict(self.level), per_label)


def fit_thresholds(
    scores: NDArray[np.floating],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
    cfg: TrainingConfig,
    folds: NDArray[np.integer] | None = None,
) -> tuple[float, NDArray[np.float32] | None]:
    """The global threshold (best micro-F1 under the rule) and, if configured, per-label ones:
    tuned per label (``label_thresholds``) and, given the rows' ``folds``, cut per fold for
    the labels with few positives (``rare_label_cuts``)."""
    idx, top = top_k(scores, cfg.max_labels)
    n_gold = sum(len(set(g)) for g in gold)
    t, _ = tune_threshold(top, hits_matrix(idx, gold, labels), n_gold, cfg.min_labels)
    rare_cuts = cfg.rare_label_cuts > 0 and folds is not None
    if not cfg.label_thresholds and not rare_cuts:
        return t, None
    indicator = label_matrix([tuple(g) for g in gold], labels).toarray().astype(bool)
    vector = np.full(len(labels), t, dtype=np.float32)
    if cfg.label_thresholds:
        vector = tune_label_thresholds(scores, indicator, t, cfg.min_label_positives)
    if rare_cuts:
        assert folds is not None
        vector = tune_rare_label_cuts(
            scores,
            indicator,
            folds,
            vector,
            cfg.rare_label_cuts,
            cfg.min_labels,
            cfg.cut_shrinkage,
        )
    return t, vector


def cross_fitted_metrics(
    scores: NDArray[np.floating],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
    cfg: TrainingConfig,
    groups: NDArray[np.integer],
    folds: NDArray[np.integer] | None = None,
) -> dict[str, Any]:
    """Metrics of rows scored with thresholds tuned on the other fold (folds by document;
    ``folds``: the rows' cross-validation folds, for the rules that cut per fold)."""
    fold = np.asarray(groups) % 2
    thresholds = np.zeros(scores.shape, dtype=np.float32)
    for f in (0, 1):
        tune_rows = np.flatnonzero(fold != f) if (fold != f).any() else np.flatnonzero(fold == f)
        t, per_label = fit_thresholds(
            scores[tune_rows],
            [gold[i] for i in tune_rows],
            labels,
            cfg,
            None if folds is None else np.asarray(folds)[tune_rows],
        )
        thresholds[fold == f] = per_label if per_label is not None else t
    return evaluate_scores(scores, gold, labels, thresholds, cfg.min_labels, cfg.max_labels)
