"""A linear support vector machine (squared hinge loss, liblinear): the default learner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from classifier.learners import register

if TYPE_CHECKING:
    from classifier.config import TrainingConfig


@register("svm", "LinearSVC, squared hinge loss (liblinear)")
def make(cfg: TrainingConfig, n_samples: int) -> Any:
    from sklearn.svm import LinearSVC

    return LinearSVC(C=cfg.C, class_weight=cfg.class_weight, dual="auto", random_state=cfg.seed)
