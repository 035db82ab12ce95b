"""Fit a TopicClassifier: prepare paragraphs, split by document, fit, calibrate, tune thresholds."""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier import tokenizer
from classifier.config import NEIGHBOUR_WEIGHTS, TrainingConfig
from classifier.corpus import Document
from classifier.decision import top_k, tune_label_thresholds, tune_threshold
from classifier.errors import NotTrainedError
from classifier.evaluate import evaluate_scores, hits_matrix
from classifier.features import build_vectorizer
from classifier.model import TopicClassifier, join_by_document, mix
from classifier.neighbours import NeighbourIndex
from classifier.paragraphs import split_paragraphs, visible_len

# A progress hook: called with a description and a total, returns an "advance by n" function.
ProgressHook = Callable[[str, float | None], Callable[[float], None]]
BATCH_PARAGRAPHS = 2000
MAX_CALIBRATION_PAIRS = 2_000_000


def no_progress(description: str, total: float | None = None) -> Callable[[float], None]:
    return lambda n: None


@dataclass
class PreparedCorpus:
    """Documents reduced to what fitting needs: ids, tags and tokenized paragraphs."""

    doc_ids: list[str] = field(default_factory=list)
    doc_tags: list[tuple[str, ...]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    par_doc: list[int] = field(default_factory=list)
    par_len: list[int] = field(default_factory=list)

    @property
    def n_documents(self) -> int:
        return len(self.doc_ids)

    @property
    def n_paragraphs(self) -> int:
        return len(self.texts)

    def subset(self, docs: Sequence[int]) -> PreparedCorpus:
        """The documents at ``docs`` (and their paragraphs), renumbered from zero."""
        new_id = {d: i for i, d in enumerate(docs)}
        out = PreparedCorpus([self.doc_ids[d] for d in docs], [self.doc_tags[d] for d in docs])
        for text, d, n in zip(self.texts, self.par_doc, self.par_len, strict=True):
            if d in new_id:
                out.texts.append(text)
                out.par_doc.append(new_id[d])
                out.par_len.append(n)
        return out

    def paragraph_tags(self) -> list[tuple[str, ...]]:
        return [self.doc_tags[d] for d in self.par_doc]

    def whole_documents(self) -> tuple[list[str], list[tuple[str, ...]]]:
        """Each document of several paragraphs as one text (its paragraphs joined), with tags."""
        counts = np.bincount(self.par_doc, minlength=self.n_documents)
        joined = join_by_document(self.texts, np.asarray(self.par_doc), self.n_documents)
        multi = np.flatnonzero(counts > 1)
        return [joined[d] for d in multi], [self.doc_tags[d] for d in multi]


def prepare_corpus(
    documents: Iterable[Document],
    cfg: TrainingConfig,
    segmenter: str,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
) -> PreparedCorpus:
    """Split documents into paragraphs and tokenize them, in parallel batches, streaming."""
    out = PreparedCorpus()
    advance = progress("segmenting", None)

    def batches() -> Iterator[list[str]]:
        batch: list[str] = []
        for doc in documents:
            doc_index = len(out.doc_ids)
            out.doc_ids.append(doc.id)
            out.doc_tags.append(doc.tags)
            for par in split_paragraphs(doc.text, cfg.max_paragraph_chars, cfg.min_paragraph_chars):
                batch.append(par)
                out.par_doc.append(doc_index)
                out.par_len.append(visible_len(par))
            if len(batch) >= BATCH_PARAGRAPHS:
                yield batch
                batch = []
        if batch:
            yield batch

    if jobs == 1:
        results: Iterable[list[str]] = (tokenizer.prepare_many(b, segmenter) for b in batches())
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(tokenizer.prepare_many)(b, segmenter) for b in batches()
        )
    for prepared in results:
        out.texts.extend(prepared)
        advance(len(prepared))
    return out


def validation_docs(doc_ids: Sequence[str], fraction: float) -> NDArray[np.bool_]:
    """Pick validation documents by a hash of their id: stable as the corpus grows."""
    if fraction <= 0 or len(doc_ids) < 2:
        return np.zeros(len(doc_ids), dtype=bool)
    # Salted: corpora are often split into train/test by an unsalted hash of the same names.
    h = np.array(
        [int(hashlib.sha1(f"tagger-validation:{d}".encode()).hexdigest()[:8], 16) for d in doc_ids]
    )
    val = h / 2**32 < fraction
    if not val.any():
        val[int(np.argmin(h))] = True
    if val.all():
        val[int(np.argmax(h))] = False
    return val


def choose_labels(
    doc_tags: Sequence[tuple[str, ...]], cfg: TrainingConfig
) -> tuple[list[str], dict[str, int]]:
    """Labels to learn, by document frequency; and the rare labels the config drops."""
    counts = Counter(t for tags in doc_tags for t in tags)
    ordered = sorted(counts, key=lambda t: (-counts[t], t))
    if cfg.rare_labels == "keep":
        return ordered, {}
    kept = [t for t in ordered if counts[t] >= cfg.min_label_docs]
    dropped = {t: counts[t] for t in ordered if counts[t] < cfg.min_label_docs}
    return kept, dropped


def label_matrix(tags: Sequence[tuple[str, ...]], labels: Sequence[str]) -> sp.csc_matrix:
    """Indicator matrix (rows × labels); int32, never int8 (ids wrap beyond 127 labels)."""
    index = {t: j for j, t in enumerate(labels)}
    rows, cols = [], []
    for i, ts in enumerate(tags):
        for t in ts:
            if t in index:
                rows.append(i)
                cols.append(index[t])
    data = np.ones(len(rows), dtype=np.int32)
    return sp.csc_matrix((data, (rows, cols)), shape=(len(tags), len(labels)), dtype=np.int32)


def fit_linear(
    x: sp.csr_matrix,
    y: sp.csc_matrix,
    cfg: TrainingConfig,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
) -> tuple[sp.csr_matrix, NDArray[np.float32]]:
    """One linear model per label (in parallel threads); stack the weights into one matrix.

    liblinear releases the GIL, so threads share ``x`` without copies. Each label's weights
    are pruned to |w| > ``cfg.prune_below`` as they arrive, so memory holds one dense vector
    per running job rather than one per label.
    """
    from joblib import Parallel, delayed
    from sklearn.exceptions import ConvergenceWarning

    x64 = sp.csr_matrix(x, dtype=np.float64)
    n_features, n_labels = x.shape[1], y.shape[1]

    def fit_one(j: int) -> tuple[int, NDArray[np.intp], NDArray[np.float32], float]:
        target = y[:, j].toarray().ravel()
        if target.all():
            return j, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32), 1.0
        estimator = _binary_learner(cfg, x.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(x64, target)
        w = estimator.coef_.ravel()
        keep = np.flatnonzero(np.abs(w) > cfg.prune_below)
        return j, keep, w[keep].astype(np.float32), float(estimator.intercept_[0])

    advance = progress("fitting", n_labels)
    rows, cols, vals = [], [], []
    intercept = np.zeros(n_labels, dtype=np.float32)
    for j, keep, w, b in Parallel(n_jobs=jobs, backend="threading", return_as="generator")(
        delayed(fit_one)(j) for j in range(n_labels)
    ):
        rows.append(keep)
        cols.append(np.full(len(keep), j, dtype=np.int32))
        vals.append(w)
        intercept[j] = b
        advance(1)
    coef = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_features, n_labels),
        dtype=np.float32,
    )
    return coef, intercept


def _binary_learner(cfg: TrainingConfig, n_samples: int) -> Any:
    """An unfitted binary linear classifier of the configured kind."""
    if cfg.learner == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=cfg.C, class_weight=cfg.class_weight, solver="liblinear", random_state=cfg.seed
        )
    if cfg.learner == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="modified_huber",
            alpha=1.0 / (cfg.C * n_samples),
            class_weight=cfg.class_weight,
            random_state=cfg.seed,
        )
    from sklearn.svm import LinearSVC

    return LinearSVC(C=cfg.C, class_weight=cfg.class_weight, dual="auto", random_state=cfg.seed)


def fit_calibration(
    decision: NDArray[np.floating], gold: sp.spmatrix, seed: int
) -> tuple[float, float]:
    """Fit one sigmoid ``1 / (1 + exp(-(a d + b)))`` to all (row, label) decision values."""
    from sklearn.linear_model import LogisticRegression

    d = decision.ravel()
    g = np.asarray(gold.toarray(), dtype=bool).ravel()
    if len(d) > MAX_CALIBRATION_PAIRS:
        pick = np.random.default_rng(seed).choice(len(d), MAX_CALIBRATION_PAIRS, replace=False)
        d, g = d[pick], g[pick]
    if g.all() or not g.any():
        return 1.0, 0.0
    lr = LogisticRegression(C=1e4).fit(d.reshape(-1, 1), g)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


@dataclass
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


def fit_classifier(
    data: PreparedCorpus,
    cfg: TrainingConfig,
    segmenter: str,
    jobs: int = 1,
    progress: ProgressHook = no_progress,
) -> tuple[TopicClassifier, FitReport]:
    """Fit on the training documents, calibrate and tune thresholds on the validation ones."""
    is_val = validation_docs(data.doc_ids, cfg.validation_fraction)
    fit_part = data.subset(np.flatnonzero(~is_val).tolist())
    val_part = data.subset(np.flatnonzero(is_val).tolist())
    labels, dropped = choose_labels(fit_part.doc_tags, cfg)
    if not labels or fit_part.n_paragraphs == 0:
        raise NotTrainedError("the corpus has no paragraph with a learnable tag")
    model = _fit_model(fit_part, labels, cfg, segmenter, jobs, progress)
    unlearnable = sorted({t for ts in val_part.doc_tags for t in ts} - set(labels) - set(dropped))
    validation: dict[str, Any] = {}
    neighbours: dict[str, Any] = {}
    if val_part.n_documents:
        validation, neighbours = _calibrate_and_tune(model, val_part, cfg)
    if cfg.refit_on_all and val_part.n_documents:
        labels, dropped = choose_labels(data.doc_tags, cfg)
        refit = _fit_model(
            data, labels, cfg, segmenter, jobs, progress, index=model.neighbours_ is not None
        )
        refit.calibration_, refit.thresholds_ = model.calibration_, model.thresholds_
        refit.neighbour_weight_ = model.neighbour_weight_
        refit.label_thresholds_ = _carry_label_thresholds(model, refit)
        model = refit
    report = FitReport(
        labels_dropped=dropped,
        labels_unlearnable=unlearnable,
        n_fit_documents=fit_part.n_documents,
        n_validation_documents=val_part.n_documents,
        n_features=model.coef_.shape[0],
        n_weights=int(model.coef_.nnz),
        validation=validation,
        neighbours=neighbours,
    )
    return model, report


def _carry_label_thresholds(
    old: TopicClassifier, new: TopicClassifier
) -> dict[str, NDArray[np.float32]]:
    """Per-label thresholds for ``new``'s labels, by name; the global one for new labels."""
    carried = {}
    for level, vector in old.label_thresholds_.items():
        by_name = dict(zip(old.labels_, vector, strict=True))
        fallback = old.thresholds_[level]
        carried[level] = np.array([by_name.get(t, fallback) for t in new.labels_], dtype=np.float32)
    return carried


def _fit_model(
    data: PreparedCorpus,
    labels: list[str],
    cfg: TrainingConfig,
    segmenter: str,
    jobs: int,
    progress: ProgressHook,
    index: bool = True,
) -> TopicClassifier:
    """Fit vectorizer and weights; with ``cfg.neighbours`` and ``index``, the neighbour index."""
    texts, tags = data.texts, data.paragraph_tags()
    if cfg.train_on_documents:
        extra_texts, extra_tags = data.whole_documents()
        texts, tags = texts + extra_texts, tags + extra_tags
    vectorizer = build_vectorizer(cfg)
    try:
        x = vectorizer.fit_transform(texts)
    except ValueError as exc:  # empty vocabulary, min_df too high for a tiny corpus
        raise NotTrainedError(f"cannot build features: {exc}") from None
    y = label_matrix(tags, labels)
    coef, intercept = fit_linear(x, y, cfg, jobs, progress)
    model = TopicClassifier(
        config=cfg,
        segmenter=segmenter,
        labels=labels,
        vectorizer=vectorizer,
        coef=coef,
        intercept=intercept,
    )
    if cfg.neighbours and index:
        docs = join_by_document(data.texts, np.asarray(data.par_doc), data.n_documents)
        model.neighbours_ = NeighbourIndex.build(
            model.features(docs), label_matrix(data.doc_tags, labels), cfg.neighbours
        )
    return model


def _calibrate_and_tune(
    model: TopicClassifier, val: PreparedCorpus, cfg: TrainingConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the score sigmoid, choose the neighbour weight (best validation document micro-F1,
    thresholds tuned in-sample), then tune the paragraph and document thresholds.

    Returns the validation metrics and the neighbour-weight choice (empty without an index).

    The validation metrics returned are cross-fitted: each half of the validation documents
    is scored with thresholds tuned on the other half, so they are not flattered by tuning.
    """
    labels = list(model.labels_)
    par_gold = val.paragraph_tags()
    x = model.features(val.texts)
    decision = model.linear(x)
    model.calibration_ = fit_calibration(decision, label_matrix(par_gold, labels), cfg.seed)
    par_doc = np.asarray(val.par_doc)
    par_len = np.asarray(val.par_len, dtype=float)
    linear_scores = model.calibrate(decision)
    # computed once for all the weights tried
    neighbour_scores = model.neighbours_.scores(x) if model.neighbours_ is not None else None

    def scores_with(weight: float) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        model.neighbour_weight_ = weight
        par = mix(linear_scores, neighbour_scores, weight)
        return par, model.document_scores(val.texts, par_doc, par_len, val.n_documents, par)

    choice: dict[str, float] = {}
    if model.neighbours_ is not None:
        weights = NEIGHBOUR_WEIGHTS if cfg.neighbour_weight is None else (cfg.neighbour_weight,)
        for w in weights:
            doc = scores_with(w)[1]
            t, _ = fit_thresholds(doc, val.doc_tags, labels, cfg)
            choice[f"{w:g}"] = evaluate_scores(
                doc, val.doc_tags, labels, t, cfg.min_labels, cfg.max_labels
            )["micro"]["f1"]
        best = max(weights, key=lambda w: choice[f"{w:g}"])
        if best == 0:
            model.neighbours_ = None
    else:
        best = 0.0
    par_scores, doc_scores = scores_with(best)
    results = {}
    for level, scores, gold, groups in (
        ("paragraph", par_scores, par_gold, par_doc),
        ("document", doc_scores, val.doc_tags, np.arange(val.n_documents)),
    ):
        t, per_label = fit_thresholds(scores, gold, labels, cfg)
        model.thresholds_[level] = t
        if per_label is not None:
            model.label_thresholds_[level] = per_label
        results[level] = cross_fitted_metrics(scores, gold, labels, cfg, groups)
        results[level].pop("per_label")
    return results, {"chosen": best, "tried": choice} if choice else {}


def fit_thresholds(
    scores: NDArray[np.floating],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
    cfg: TrainingConfig,
) -> tuple[float, NDArray[np.float32] | None]:
    """The global threshold (best micro-F1 under the rule) and, if configured, per-label ones."""
    idx, top = top_k(scores, cfg.max_labels)
    n_gold = sum(len(set(g)) for g in gold)
    t, _ = tune_threshold(top, hits_matrix(idx, gold, labels), n_gold, cfg.min_labels)
    if not cfg.label_thresholds:
        return t, None
    indicator = label_matrix([tuple(g) for g in gold], labels).toarray().astype(bool)
    return t, tune_label_thresholds(scores, indicator, t, cfg.min_label_positives)


def cross_fitted_metrics(
    scores: NDArray[np.floating],
    gold: Sequence[Sequence[str]],
    labels: Sequence[str],
    cfg: TrainingConfig,
    groups: NDArray[np.integer],
) -> dict[str, Any]:
    """Metrics of rows scored with thresholds tuned on the other fold (folds by document)."""
    fold = np.asarray(groups) % 2
    thresholds = np.zeros(scores.shape, dtype=np.float32)
    for f in (0, 1):
        tune_rows = np.flatnonzero(fold != f) if (fold != f).any() else np.flatnonzero(fold == f)
        t, per_label = fit_thresholds(scores[tune_rows], [gold[i] for i in tune_rows], labels, cfg)
        thresholds[fold == f] = per_label if per_label is not None else t
    return evaluate_scores(scores, gold, labels, thresholds, cfg.min_labels, cfg.max_labels)
