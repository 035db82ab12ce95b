"""Fit a TopicClassifier: hold out validation documents, fit the scorer, calibrate it and tune
the decision thresholds on the held-out documents, refit on everything, build the model once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from classifier.calibration import fit_calibration
from classifier.config import NEIGHBOUR_WEIGHTS, TrainingConfig
from classifier.dataset import PreparedCorpus, validation_docs
from classifier.errors import NotTrainedError
from classifier.evaluate import evaluate_scores
from classifier.features import fit_features
from classifier.labels import choose_labels, label_matrix
from classifier.linear import fit_one_vs_rest
from classifier.model import Scorer, TopicClassifier, mix
from classifier.neighbours import NeighbourIndex
from classifier.progress import ProgressHook, no_progress
from classifier.thresholds import Thresholds, cross_fitted_metrics, fit_thresholds


@dataclass(frozen=True)
class FitReport:
    """What fitting decided and measured, for the metadata."""

    labels_dropped: dict[str, int]
    labels_unlearnable: list[str]
    n_fit_documents: int
    n_validation_documents: int
    n_features: int
    n_weights: int
    validation: dict[str, Any]
    # the neighbour weight chosen on validation and the document micro-F1 of each tried
    neighbours: dict[str, Any] = field(default_factory=dict)
    # the held-out documents, by id: the promotion gate's default evaluation set
    validation_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tuning:
    """What the validation documents decided: the calibrated scorer, the thresholds, and the
    cross-fitted validation metrics."""

    scorer: Scorer
    thresholds: Thresholds
    validation: dict[str, Any]
    neighbours: dict[str, Any]


def fit_classifier(
    data: PreparedCorpus,
    cfg: TrainingConfig,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
) -> tuple[TopicClassifier, FitReport]:
    """Fit on the training documents, calibrate and tune thresholds on the validation ones.

    ``cfg`` is resolved (``TrainingConfig.resolved``): ``data`` was prepared with its text
    settings.
    """
    if cfg.segmenter == "auto":
        raise ValueError("fit_classifier takes a resolved configuration (cfg.resolved())")
    is_val = validation_docs(data.doc_ids, cfg.validation_fraction)
    fit_part = data.subset(np.flatnonzero(~is_val).tolist())
    val_part = data.subset(np.flatnonzero(is_val).tolist())
    labels, dropped = choose_labels(fit_part.doc_tags, cfg.min_label_docs, cfg.rare_labels)
    if not labels or fit_part.n_paragraphs == 0:
        raise NotTrainedError("the corpus has no paragraph with a learnable tag")
    scorer = fit_scorer(fit_part, labels, cfg, jobs, progress)
    unlearnable = sorted({t for ts in val_part.doc_tags for t in ts} - set(labels) - set(dropped))
    if val_part.n_documents:
        tuning = tune_on_validation(scorer, labels, val_part, cfg)
    else:
        tuning = Tuning(scorer, Thresholds(), {}, {})
    scorer, thresholds = tuning.scorer, tuning.thresholds
    if cfg.refit_on_all and val_part.n_documents:
        refit_labels, dropped = choose_labels(data.doc_tags, cfg.min_label_docs, cfg.rare_labels)
        refit = fit_scorer(
            data, refit_labels, cfg, jobs, progress, index=scorer.neighbours is not None
        )
        scorer = replace(
            refit, calibration=scorer.calibration, neighbour_weight=scorer.neighbour_weight
        )
        thresholds = thresholds.carried(labels, refit_labels)
        labels = refit_labels
    model = TopicClassifier(cfg, tuple(labels), scorer, thresholds)
    report = FitReport(
        labels_dropped=dropped,
        labels_unlearnable=unlearnable,
        n_fit_documents=fit_part.n_documents,
        n_validation_documents=val_part.n_documents,
        n_features=scorer.features.n_features,
        n_weights=int(scorer.weights.coef.nnz),
        validation=tuning.validation,
        neighbours=tuning.neighbours,
        validation_ids=list(val_part.doc_ids),
    )
    return model, report


def fit_scorer(
    data: PreparedCorpus,
    labels: list[str],
    cfg: TrainingConfig,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
    index: bool = True,
) -> Scorer:
    """Fit features and weights (uncalibrated); with ``cfg.neighbours`` and ``index``, the
    neighbour index of the documents."""
    texts, tags = data.texts, data.paragraph_tags()
    if cfg.train_on_documents:
        extra_texts, extra_tags = data.whole_documents()
        texts, tags = texts + extra_texts, tags + extra_tags
    try:
        features, x = fit_features(texts, cfg)
    except ValueError as exc:  # empty vocabulary, min_df too high for a tiny corpus
        raise NotTrainedError(f"cannot build features: {exc}") from None
    weights = fit_one_vs_rest(x, label_matrix(tags, labels), cfg, jobs, progress)
    neighbours = None
    if cfg.neighbours and index:
        neighbours = NeighbourIndex.build(
            features.transform(data.joined()), label_matrix(data.doc_tags, labels), cfg.neighbours
        )
    return Scorer(features, weights, neighbours=neighbours, aggregation=cfg.aggregation)


def tune_on_validation(
    scorer: Scorer, labels: list[str], val: PreparedCorpus, cfg: TrainingConfig
) -> Tuning:
    """Fit the score sigmoid, choose the neighbour weight (best validation document micro-F1,
    thresholds tuned in-sample), then tune the paragraph and document thresholds.

    The validation metrics returned are cross-fitted: each half of the validation documents
    is scored with thresholds tuned on the other half, so they are not flattered by tuning.
    """
    par_gold = val.paragraph_tags()
    x = scorer.transform(val.texts)
    decision = scorer.weights.decision(x)
    scorer = replace(
        scorer, calibration=fit_calibration(decision, label_matrix(par_gold, labels), cfg.seed)
    )
    par_doc = np.asarray(val.par_doc)
    par_len = np.asarray(val.par_len, dtype=float)
    linear_scores = scorer.calibration.apply(decision)
    # computed once for all the weights tried
    neighbour_scores = scorer.neighbours.scores(x) if scorer.neighbours is not None else None

    def scores_with(weight: float) -> tuple[Scorer, np.ndarray, np.ndarray]:
        candidate = replace(scorer, neighbour_weight=weight)
        par = mix(linear_scores, neighbour_scores, weight)
        doc = candidate.document_scores(val.texts, par_doc, par_len, val.n_documents, par)
        return candidate, par, doc

    choice: dict[str, float] = {}
    best = 0.0
    if scorer.neighbours is not None:
        weights = NEIGHBOUR_WEIGHTS if cfg.neighbour_weight is None else (cfg.neighbour_weight,)
        for w in weights:
            doc = scores_with(w)[2]
            t, _ = fit_thresholds(doc, val.doc_tags, labels, cfg)
            choice[f"{w:g}"] = evaluate_scores(
                doc, val.doc_tags, labels, t, cfg.min_labels, cfg.max_labels
            )["micro"]["f1"]
        best = max(weights, key=lambda w: choice[f"{w:g}"])
        if best == 0:
            scorer = replace(scorer, neighbours=None)
    scorer, par_scores, doc_scores = scores_with(best)
    level: dict[str, float] = {}
    per_label = {}
    results = {}
    for name, scores, gold, groups in (
        ("paragraph", par_scores, par_gold, par_doc),
        ("document", doc_scores, val.doc_tags, np.arange(val.n_documents)),
    ):
        t, vector = fit_thresholds(scores, gold, labels, cfg)
        level[name] = t
        if vector is not None:
            per_label[name] = vector
        results[name] = cross_fitted_metrics(scores, gold, labels, cfg, groups)
        results[name].pop("per_label")
    neighbours = {"chosen": best, "tried": choice} if choice else {}
    return Tuning(scorer, Thresholds(level, per_label), results, neighbours)
