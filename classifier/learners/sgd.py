"""Stochastic gradient descent on the modified Huber loss, regularised like the SVM's C."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from classifier.learners import register

if TYPE_CHECKING:
    from classifier.config import TrainingConfig


@register("sgd", "SGDClassifier, modified Huber loss, alpha = 1 / (C * n_samples)")
def make(cfg: TrainingConfig, n_samples: int) -> Any:
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(
        loss="modified_huber",
        alpha=1.0 / (cfg.C * n_samples),
        class_weight=cfg.class_weight,
        random_state=cfg.seed,
    )
