"""A linear support vector machine (squared hinge loss, liblinear): the default learner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from classifier.learners import register

if TYPE_CHECKING:
    from classifier.config import TrainingConfig


@register("svm", "LinearSVC, squared hinge loss (liblinear)")
def make(cfg: TrainingConfig, n_samples: int) -> Any:
    from sklearn.svm import LinearSVC

    # the dual solver (liblinear -s 1) whatever the shape: ``tol`` means the same thing on
    # every corpus, and 0.1 gives the same scores as 1e-4 for less work (BENCHMARKS.md)
    return LinearSVC(
        C=cfg.C, class_weight=cfg.class_weight, dual=True, tol=cfg.tol, random_state=cfg.seed
    )
