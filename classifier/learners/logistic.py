"""Logistic regression (liblinear), for comparison with the SVM."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from classifier.learners import register

if TYPE_CHECKING:
    from classifier.config import TrainingConfig


@register("logistic", "logistic regression (liblinear)")
def make(cfg: TrainingConfig, n_samples: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=cfg.C, class_weight=cfg.class_weight, solver="liblinear", random_state=cfg.seed
    )
