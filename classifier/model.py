"""The trained tagger: TF-IDF features, stacked one-vs-rest linear weights, calibrated scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier import tokenizer
from classifier.config import TrainingConfig
from classifier.decision import Threshold, decide
from classifier.features import transform
from classifier.neighbours import NeighbourIndex
from classifier.paragraphs import split_paragraphs, visible_len

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifier.features import Blocks


@dataclass(frozen=True)
class TagScore:
    """A tag and its score in [0, 1]."""

    tag: str
    score: float


@dataclass(frozen=True)
class ParagraphPrediction:
    """The tags of one paragraph of a predicted text."""

    text: str
    tags: list[TagScore]


@dataclass(frozen=True)
class Prediction:
    """The tags of one text, and of each of its paragraphs when asked for."""

    tags: list[TagScore]
    paragraphs: list[ParagraphPrediction] | None = None


# Largest dense block of weights made while scoring, in floats (32 MB): bounds a batch's memory
# (an API batch of 256 paragraphs stays far below it; 1,000 tiku paragraphs: 15 ms at 32 MB,
# 18 ms at 16 MB, halving the batch once).
MAX_BLOCK_FLOATS = 8 * 1024 * 1024
# A multiply-add in a sparse @ sparse product costs about this many in sparse @ dense (measured:
# 64 ms for 31 M against 149 ms for 283 M on tiku with character n-grams).
SPARSE_OP_COST = 4


def sparse_dense_product(
    x: sp.csr_matrix, w: sp.csr_matrix, max_floats: int = MAX_BLOCK_FLOATS
) -> NDArray[np.float32]:
    """``(x @ w).toarray()``, by whichever of two ways does less work for these rows.

    When the rows of ``w`` that ``x`` uses are dense (word features of an unpruned model),
    a sparse @ sparse product builds a sparse result that is nearly dense, at 3-4 times the
    cost of the sums; gathering those weight rows into a dense block and doing one sparse @
    dense product gives the same sums (blocks over ``max_floats`` are made for halves of the
    batch). When they are sparse (pruned weights, many character n-grams), the sparse @
    sparse product does a fraction of the multiply-adds of the dense block and wins.
    """
    sparse_ops = int((w.indptr[x.indices + 1] - w.indptr[x.indices]).sum())
    if SPARSE_OP_COST * sparse_ops < x.nnz * w.shape[1]:
        return np.asarray((x @ w).toarray(), dtype=np.float32)
    used, position = np.unique(x.indices, return_inverse=True)
    if len(used) * w.shape[1] > max_floats and x.shape[0] > 1:
        half = x.shape[0] // 2
        return np.vstack(
            [
                sparse_dense_product(x[:half], w, max_floats),
                sparse_dense_product(x[half:], w, max_floats),
            ]
        )
    compact = sp.csr_matrix(
        (x.data, position.astype(np.int32).ravel(), x.indptr), shape=(x.shape[0], len(used))
    )
    return np.asarray(compact @ w[used].toarray(), dtype=np.float32)


def mix(
    linear: NDArray[np.float32], neighbour: NDArray[np.float32] | None, weight: float
) -> NDArray[np.float32]:
    """``(1 - weight) * linear + weight * neighbour`` (just ``linear`` for weight 0)."""
    if neighbour is None or weight == 0:
        return linear
    return np.asarray((1 - weight) * linear + weight * neighbour, dtype=np.float32)


def sigmoid(x: NDArray[np.floating]) -> NDArray[np.floating]:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def aggregate(
    scores: NDArray[np.floating],
    par_doc: NDArray[np.integer],
    n_docs: int,
    rule: str,
    weights: NDArray[np.floating] | None = None,
) -> NDArray[np.float32]:
    """Combine paragraph score rows into one row per document (``par_doc`` maps rows to docs)."""
    if rule == "max":
        out = np.zeros((n_docs, scores.shape[1]), dtype=np.float32)
        np.maximum.at(out, par_doc, scores)
        return out
    w = np.ones(len(par_doc)) if rule == "mean" or weights is None else weights.astype(float)
    totals = np.bincount(par_doc, weights=w, minlength=n_docs)
    norm = np.divide(w, totals[par_doc], out=np.zeros_like(w), where=totals[par_doc] > 0)
    agg = sp.csr_matrix((norm, (par_doc, np.arange(len(par_doc)))), shape=(n_docs, len(par_doc)))
    return np.asarray(agg @ scores, dtype=np.float32)


def join_by_document(
    prepared: Sequence[str], par_doc: NDArray[np.integer], n_docs: int
) -> list[str]:
    """Each document's prepared paragraphs joined into one prepared text."""
    parts: list[list[str]] = [[] for _ in range(n_docs)]
    for text, d in zip(prepared, par_doc, strict=True):
        parts[int(d)].append(text)
    return [" ".join(p) for p in parts]


class TopicClassifier:
    """Everything prediction needs: text settings, vectorizer, weights, labels, thresholds.

    With a neighbour index, scores are ``(1 - w) * linear + w * neighbours``.
    """

    # class-level defaults: models saved before neighbours existed unpickle without them
    neighbours_: NeighbourIndex | None = None
    neighbour_weight_: float = 0.0

    def __init__(
        self,
        *,
        config: TrainingConfig,
        segmenter: str,
        labels: Sequence[str],
        vectorizer: TfidfVectorizer | Blocks,
        coef: sp.csr_matrix,
        intercept: NDArray[np.float32],
        calibration: tuple[float, float] = (1.0, 0.0),
        thresholds: dict[str, float] | None = None,
        label_thresholds: dict[str, NDArray[np.float32]] | None = None,
    ) -> None:
        self.config = config
        self.segmenter = segmenter
        self.labels_ = np.asarray(labels, dtype=object)
        self.vectorizer_ = vectorizer
        self.coef_ = sp.csr_matrix(coef, dtype=np.float32)
        self.intercept_ = np.asarray(intercept, dtype=np.float32)
        self.calibration_ = calibration
        self.thresholds_ = thresholds or {"paragraph": 0.5, "document": 0.5}
        self.label_thresholds_ = label_thresholds or {}

    @property
    def n_labels(self) -> int:
        return len(self.labels_)

    def threshold(self, level: str) -> Threshold:
        """The tuned threshold(s) of a level: per label when tuned so, else one number."""
        per_label = self.label_thresholds_.get(level)
        return per_label if per_label is not None else self.thresholds_[level]

    # --- scores -------------------------------------------------------------------------
    def prepare(self, texts: Sequence[str]) -> list[str]:
        """Tokenize texts with the segmenter the model was trained with."""
        return [tokenizer.prepare(t, self.segmenter) for t in texts]

    def features(self, prepared: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of prepared texts (scikit-learn's input checks skipped: our own
        vectorizer made them)."""
        from sklearn import config_context

        with config_context(assume_finite=True, skip_parameter_validation=True):
            return sp.csr_matrix(transform(self.vectorizer_, prepared), dtype=np.float32)

    def linear(self, x: sp.csr_matrix) -> NDArray[np.float32]:
        """Raw linear scores ``X @ W + b`` (``sparse_dense_product``, no loop over labels)."""
        out = sparse_dense_product(x, self.coef_)
        out += self.intercept_
        return out

    def blend(self, x: sp.csr_matrix, linear_scores: NDArray[np.float32]) -> NDArray[np.float32]:
        """Calibrated linear scores blended with the neighbour scores (if the model has any)."""
        if self.neighbours_ is None or self.neighbour_weight_ == 0:
            return linear_scores
        return mix(linear_scores, self.neighbours_.scores(x), self.neighbour_weight_)

    def calibrate(self, decision: NDArray[np.floating]) -> NDArray[np.float32]:
        a, b = self.calibration_
        return np.asarray(sigmoid(a * decision + b), dtype=np.float32)

    def score_prepared(self, prepared: Sequence[str]) -> NDArray[np.float32]:
        x = self.features(prepared)
        return self.blend(x, self.calibrate(self.linear(x)))

    def score_paragraphs(self, paragraphs: Sequence[str]) -> NDArray[np.float32]:
        """Scores in [0, 1], one row per paragraph, one column per label."""
        return self.score_prepared(self.prepare(paragraphs))

    def split(self, text: str) -> list[str]:
        """Split a text into paragraphs exactly as in training (never zero paragraphs)."""
        cfg = self.config
        return split_paragraphs(text, cfg.max_paragraph_chars, cfg.min_paragraph_chars) or [text]

    def score_documents(
        self, texts: Sequence[str]
    ) -> tuple[NDArray[np.float32], list[list[str]], NDArray[np.float32]]:
        """Return document scores, each document's paragraphs and the paragraph scores."""
        splits = [self.split(t) for t in texts]
        flat = [p for ps in splits for p in ps]
        par_doc = np.repeat(np.arange(len(splits)), [len(ps) for ps in splits])
        prepared = self.prepare(flat)
        par_scores = self.score_prepared(prepared)
        if self.config.aggregation == "weighted":  # lengths cost a pass over the text
            lengths = np.array([visible_len(p) for p in flat], dtype=float)
        else:
            lengths = np.ones(len(flat))
        docs = self.document_scores(prepared, par_doc, lengths, len(splits), par_scores)
        return docs, splits, par_scores

    def document_scores(
        self,
        prepared: Sequence[str],
        par_doc: NDArray[np.integer],
        par_len: NDArray[np.floating],
        n_docs: int,
        par_scores: NDArray[np.float32],
        rule: str | None = None,
    ) -> NDArray[np.float32]:
        """Document scores from their paragraphs under ``rule`` (default: the configured one).

        ``mean``, ``weighted`` (by length) and ``max`` combine paragraph scores; ``whole``
        scores each document's text as one; ``mean+whole`` averages ``mean`` and ``whole``.
        """
        rule = rule or self.config.aggregation
        if rule in ("mean", "weighted", "max"):
            if len(par_doc) == n_docs:  # one paragraph each (every document has one at least):
                # the paragraph scores are the document scores (the same array, not a copy)
                return par_scores
            return aggregate(par_scores, par_doc, n_docs, rule, par_len)
        whole = self.score_prepared(join_by_document(prepared, par_doc, n_docs))
        if rule == "whole":
            return whole
        mean = aggregate(par_scores, par_doc, n_docs, "mean")
        return np.asarray(0.5 * (mean + whole), dtype=np.float32)

    # --- decisions ----------------------------------------------------------------------
    def _tags(
        self, scores: NDArray[np.floating], level: str, top_k: int | None, threshold: float | None
    ) -> list[list[TagScore]]:
        k = top_k or self.config.max_labels
        if threshold is None:
            chosen = decide(scores, self.threshold(level), self.config.min_labels, k)
        else:
            chosen = decide(scores, threshold, 0, k)
        return [[TagScore(str(self.labels_[i]), round(s, 6)) for i, s in row] for row in chosen]

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        threshold: float | None = None,
        paragraphs: bool = False,
    ) -> list[Prediction]:
        """Tag each text; with ``paragraphs`` also tag each of its paragraphs.

        Without ``threshold`` the tuned thresholds apply and at least ``min_labels`` tags are
        returned; with it, exactly the tags scoring at least ``threshold`` (up to ``top_k``).
        """
        docs, splits, par_scores = self.score_documents(texts)
        doc_tags = self._tags(docs, "document", top_k, threshold)
        if not paragraphs:
            return [Prediction(tags) for tags in doc_tags]
        par_tags = iter(self._tags(par_scores, "paragraph", top_k, threshold))
        return [
            Prediction(tags, [ParagraphPrediction(p, next(par_tags)) for p in ps])
            for tags, ps in zip(doc_tags, splits, strict=True)
        ]
