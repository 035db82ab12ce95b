"""Fit a TopicClassifier.

With ``cv_folds`` >= 2 (the default): split the documents into folds, fit the first level on
all folds but one for each, score the held-out documents (out-of-fold scores for every
training document), fit the calibration, the second level (``classifier.stacking``) and the
thresholds on those scores, and refit the first level on everything. With ``cv_folds = 0``:
hold out one validation split instead, tune on it, refit on everything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifier.calibration import fit_calibration
from classifier.config import NEIGHBOUR_WEIGHTS, TrainingConfig
from classifier.dataset import PreparedCorpus, document_folds, validation_docs
from classifier.errors import NotTrainedError
from classifier.evaluate import evaluate_scores
from classifier.features import fit_features, fit_features_chunked, stacked
from classifier.labels import choose_labels, label_matrix
from classifier.linear import LinearWeights, fit_one_vs_rest
from classifier.model import Scorer, TopicClassifier, aggregate, mix
from classifier.names import LabelNames, boost, document_similarity
from classifier.names import choose as choose_names
from classifier.neighbours import NeighbourIndex
from classifier.progress import ProgressHook, no_progress
from classifier.resources import peak_rss_mb
from classifier.stacking import MULTI_VIEW_SHARE, document_views, fit_stacker
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
    # cross-validation: folds, and the second level's choice and what it tried
    cross_validation: dict[str, Any] = field(default_factory=dict)


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
    if cfg.cv_folds >= 2:
        return fit_cross_validated(data, cfg, jobs, progress)
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


def fit_cross_validated(
    data: PreparedCorpus,
    cfg: TrainingConfig,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
) -> tuple[TopicClassifier, FitReport]:
    """Out-of-fold first-level scores of every training document (``cfg.cv_folds`` folds by
    document), then on them the paragraph calibration, the second level (with
    ``cfg.stacking``) and the thresholds; the first level refitted on all documents.

    The validation metrics reported are cross-fitted on the out-of-fold scores: each half of
    the documents is scored with thresholds tuned on the other half.
    """
    seconds: dict[str, float] = {}
    # this process's peak memory at the end of each step: where the training's peak is
    peaks: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        peaks[name] = peak_rss_mb()
        clock = now

    labels, dropped = choose_labels(data.doc_tags, cfg.min_label_docs, cfg.rare_labels)
    if not labels or data.n_paragraphs == 0:
        raise NotTrainedError("the corpus has no paragraph with a learnable tag")
    par_doc = np.asarray(data.par_doc, dtype=np.intp)
    n_docs, n_par = data.n_documents, data.n_paragraphs
    counts = np.bincount(par_doc, minlength=n_docs)
    multi = np.flatnonzero(counts > 1)
    # training rows: the paragraphs, then (train_on_documents) each multi-paragraph document,
    # featurised a chunk at a time (``fit_features_chunked``: the texts are never all held)
    train_multi = bool(cfg.train_on_documents and len(multi))
    row_doc = np.concatenate([par_doc, multi]) if train_multi else par_doc

    def rows() -> Iterator[list[str]]:
        yield from data.paragraph_chunks()
        if train_multi:
            yield from data.document_chunks(multi)

    try:
        features, x = fit_features_chunked(rows, cfg)
    except ValueError as exc:  # empty vocabulary, min_df too high for a tiny corpus
        raise NotTrainedError(f"cannot build features: {exc}") from None
    doc_gold = label_matrix(data.doc_tags, labels)
    y_rows = sp.csr_matrix(doc_gold)[row_doc]
    y = sp.csc_matrix(y_rows)
    x_par = x[:n_par] if train_multi else x
    # the whole documents' views are read only when enough documents have several paragraphs
    views_whole = cfg.stacking and len(multi) >= MULTI_VIEW_SHARE * n_docs
    needs_whole = views_whole or (not cfg.stacking and cfg.aggregation in ("whole", "mean+whole"))
    x_multi = None
    if needs_whole and len(multi):
        x_multi = (
            x[n_par:]
            if train_multi
            else stacked(features.transform(c) for c in data.document_chunks(multi))
        )
    lap("features")

    folds = document_folds(data.doc_ids, cfg.cv_folds)
    oof_par = np.zeros((n_par, len(labels)), dtype=np.float32)
    oof_multi = np.zeros((len(multi), len(labels)), dtype=np.float32)
    fold_models = []
    for f in range(cfg.cv_folds):
        train_rows = np.flatnonzero(folds[row_doc] != f)
        held = folds[par_doc] == f
        if not held.any() or len(train_rows) == 0:
            continue
        weights = fit_one_vs_rest(
            x[train_rows], sp.csc_matrix(y_rows[train_rows]), cfg, jobs, progress
        )
        oof_par[held] = weights.decision(x_par[held])
        if x_multi is not None:
            held_multi = folds[multi] == f
            oof_multi[held_multi] = weights.decision(x_multi[held_multi])
        fold_models.append(weights)
    lap("first_level_folds")
    if cfg.refit_on_all or not fold_models:
        weights = fit_one_vs_rest(x, y, cfg, jobs, progress)
    else:  # no refit: the fold models averaged
        weights = LinearWeights(
            sp.csr_matrix(sum(w.coef for w in fold_models) / len(fold_models), dtype=np.float32),
            np.mean([w.intercept for w in fold_models], axis=0).astype(np.float32),
        )
    oof_whole = None
    if x_multi is not None:
        oof_whole = np.zeros((n_docs, len(labels)), dtype=np.float32)
        single = np.flatnonzero(counts[par_doc] == 1)
        oof_whole[par_doc[single]] = oof_par[single]
        oof_whole[multi] = oof_multi

    lap("first_level_refit")
    par_gold = data.paragraph_tags()
    calibration = fit_calibration(oof_par, label_matrix(par_gold, labels), cfg.seed)
    cv: dict[str, Any] = {"folds": cfg.cv_folds, "stacking": cfg.stacking}
    stacker = None
    if cfg.stacking:
        views = document_views(oof_par, par_doc, n_docs, oof_whole if views_whole else None)
        # the views hold what the second level reads: the whole documents' values go now,
        # and the paragraphs' scores are made after it (less memory at its peak)
        oof_whole = oof_multi = None
        gold = doc_gold.toarray().astype(bool)
        stacker, oof_doc, chosen = fit_stacker(
            views, gold, folds, cfg.stack_candidates, cfg.seed, cfg.min_labels, jobs, progress
        )
        doc_scores = stacker.calibration.apply(oof_doc)
        del views, gold, oof_doc  # the steps after need none of them
        cv["stacker"] = {
            "floor": chosen.floor,
            "mix": chosen.mix,
            "views": chosen.n_views,
            "out_of_fold_micro_f1": chosen.tried,
        }
        par_scores = calibration.apply(oof_par)
    else:
        par_scores = calibration.apply(oof_par)
        doc_scores = oof_document_scores(
            cfg.aggregation,
            par_scores,
            par_doc,
            np.asarray(data.par_len, dtype=float),
            n_docs,
            None if oof_whole is None else calibration.apply(oof_whole),
        )
    lap("second_level" if cfg.stacking else "aggregation")
    names = None
    if cfg.label_names:
        unweighted = LabelNames.of(labels, cfg.text, features, np.zeros(len(labels)))
        similarity = document_similarity(unweighted.paragraph_similarity(x_par), par_doc, n_docs)

        def measure(scores: np.ndarray) -> tuple[float, float]:
            r = cross_fitted_metrics(scores, data.doc_tags, labels, cfg, np.arange(n_docs), folds)
            return r["micro"]["f1"], r["macro"]["f1"]

        positives = np.asarray(doc_gold.sum(axis=0)).ravel()
        weight, cv["names"] = choose_names(doc_scores, similarity, positives, measure)
        if weight is not None:
            names = replace(unweighted, weight=weight)
            doc_scores = boost(doc_scores, similarity, weight)
        lap("names")
    level: dict[str, float] = {}
    per_label = {}
    results = {}
    for name, scores, gold_tags, groups, row_folds in (
        ("paragraph", par_scores, par_gold, par_doc, None),
        ("document", doc_scores, data.doc_tags, np.arange(n_docs), folds),
    ):
        t, vector = fit_thresholds(scores, gold_tags, labels, cfg, row_folds)
        level[name] = t
        if vector is not None:
            per_label[name] = vector
        results[name] = cross_fitted_metrics(scores, gold_tags, labels, cfg, groups, row_folds)
        results[name].pop("per_label")
    lap("thresholds")
    cv["seconds"] = seconds
    cv["peak_rss_mb"] = peaks
    scorer = Scorer(features, weights, calibration, aggregation=cfg.aggregation)
    model = TopicClassifier(
        cfg, tuple(labels), scorer, Thresholds(level, per_label), stacker, names
    )
    report = FitReport(
        labels_dropped=dropped,
        labels_unlearnable=[],
        n_fit_documents=n_docs,
        n_validation_documents=n_docs,
        n_features=features.n_features,
        n_weights=int(weights.coef.nnz) + (int(stacker.weights.coef.nnz) if stacker else 0),
        validation=results,
        cross_validation=cv,
        # the first fold's documents: a fixed set (folds go by a hash of the id) that the
        # promotion gate scores both versions on (seen in training by both, as after a refit)
        validation_ids=[d for d, f in zip(data.doc_ids, folds, strict=True) if f == 0],
    )
    return model, report


def oof_document_scores(
    rule: str,
    par_scores: np.ndarray,
    par_doc: np.ndarray,
    par_len: np.ndarray,
    n_docs: int,
    whole: np.ndarray | None,
) -> np.ndarray:
    """Out-of-fold document scores under an aggregation rule (as ``Scorer.document_scores``
    computes them at prediction, from out-of-fold paragraph and whole-document scores)."""
    if rule in ("mean", "weighted", "max"):
        if len(par_doc) == n_docs:
            return par_scores
        return aggregate(par_scores, par_doc, n_docs, rule, par_len)
    if whole is None:  # every document is one paragraph: whole = the paragraph
        whole = aggregate(par_scores, par_doc, n_docs, "mean")
    if rule == "whole":
        return whole
    mean = aggregate(par_scores, par_doc, n_docs, "mean")
    return np.asarray(0.5 * (mean + whole), dtype=np.float32)
