"""A label's own name as evidence for it: a document that says the name is likelier to be
about the label, the more so for a label seen on few training documents.

A thesaurus term names its subject (``郡县制``, ``coffee``), and the labels a model has seen
least are where its weights know least: on tiku's held-out documents the gold labels of one
to five training documents rank 14th by the name's similarity and 22nd by the model's
scores (BENCHMARKS.md §1). Each label's name goes through the text path and the features
of the model, as a text would; a document's similarity to a label is the mean over its
paragraphs of the dot product of their TF-IDF rows with the name's. A document's score for
label j then moves in logit space by ``weight_j * similarity``, with

    weight_j = NAME_WEIGHTS[b] / (1 + n_j / NAME_PRIOR_DOCS[m])

for a label on n_j training documents: the model's own evidence outweighs the name's as
it grows. ``(m, b)`` is chosen on the out-of-fold document scores of training: the pair
with the best cross-fitted macro-F1 among those whose micro-F1 is at least that of the
scores without names (no pair: no names). Nothing is learnt from the names' text, so the
training documents' similarities are not flattered by it; only the two numbers are tuned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier.features import Features
from classifier.native import dense_product, logit_shift
from classifier.text import TextSettings, prepare_paragraph

NAME_PRIOR_DOCS = (10.0, 30.0, 100.0)
NAME_WEIGHTS = (2.0, 4.0, 8.0, 16.0)
# paragraphs' or documents' similarities to the names: sparse in training (every training
# paragraph at once), dense in prediction (a slice of rows, as their scores are)
Similarity = sp.csr_matrix | NDArray[np.float32]
# scores are clipped this far from 0 and 1 before their logit
_EDGE = 1e-6


@dataclass(frozen=True, eq=False)
class LabelNames:
    """The labels' names as feature columns (features × labels) and each label's weight."""

    vectors: sp.csr_matrix
    weight: NDArray[np.float32]

    @classmethod
    def of(
        cls,
        labels: Sequence[str],
        settings: TextSettings,
        features: Features,
        weight: NDArray[np.floating],
    ) -> LabelNames:
        """Each label's name prepared as a paragraph (the model's text ``settings``) and
        featurised."""
        rows = features.transform([prepare_paragraph(label, settings) for label in labels])
        return cls(sp.csr_matrix(rows.T, dtype=np.float32), np.asarray(weight, dtype=np.float32))

    def paragraph_similarity(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """Each paragraph's similarity to each label's name (sparse: most names share no
        feature with a paragraph)."""
        return sp.csr_matrix(x @ self.vectors, dtype=np.float32)

    def paragraph_similarity_dense(self, x: sp.csr_matrix) -> NDArray[np.float32]:
        """``paragraph_similarity`` as a dense array (the same sums, in the same order), for
        rows already scored densely: no sparse result to build for a few paragraphs."""
        return dense_product(x, self.vectors)

    def boosted(
        self,
        doc_scores: NDArray[np.floating],
        par_similarity: sp.csr_matrix | NDArray[np.float32],
        par_doc: NDArray[np.integer],
    ) -> NDArray[np.float32]:
        """Document scores in [0, 1] moved by their names' evidence."""
        return boost(
            doc_scores, document_similarity(par_similarity, par_doc, len(doc_scores)), self.weight
        )


def document_similarity(
    par_similarity: Similarity, par_doc: NDArray[np.integer], n_docs: int
) -> Similarity:
    """The mean of each document's paragraphs' similarities (every document has one),
    sparse or dense as the paragraphs' are."""
    par_doc = np.asarray(par_doc, dtype=np.int64)
    if len(par_doc) == n_docs:
        return par_similarity
    counts = np.bincount(par_doc, minlength=n_docs).astype(np.float32)
    mean = sp.csr_matrix(
        (1.0 / counts[par_doc], (par_doc, np.arange(len(par_doc)))),
        shape=(n_docs, len(par_doc)),
        dtype=np.float32,
    )
    if isinstance(par_similarity, np.ndarray):
        return np.asarray(mean @ par_similarity, dtype=np.float32)
    return sp.csr_matrix(mean @ par_similarity, dtype=np.float32)


def boost(
    scores: NDArray[np.floating], similarity: Similarity, weight: NDArray[np.floating]
) -> NDArray[np.float32]:
    """``sigmoid(logit(scores) + weight * similarity)``, only where a similarity is non-zero
    (elsewhere the scores are returned as they were); ``similarity`` sparse or dense."""
    if isinstance(similarity, np.ndarray):
        return logit_shift(scores, similarity, weight, _EDGE)
    out = np.array(scores, dtype=np.float32)
    sim = sp.coo_matrix(similarity)
    row, col, values = sim.row, sim.col, sim.data
    if not len(row):
        return out
    p = np.clip(out[row, col].astype(np.float64), _EDGE, 1 - _EDGE)
    z = np.log(p / (1 - p)) + np.asarray(weight, dtype=np.float64)[col] * values
    out[row, col] = 1 / (1 + np.exp(-z))
    return out


def label_weights(
    positives: NDArray[np.integer], prior_docs: float, weight: float
) -> NDArray[np.float32]:
    """``weight / (1 + n_j / prior_docs)`` for labels on ``positives`` training documents."""
    return (weight / (1 + np.asarray(positives, dtype=np.float64) / prior_docs)).astype(np.float32)


def choose(
    doc_scores: NDArray[np.float32],
    similarity: sp.csr_matrix,
    positives: NDArray[np.integer],
    measure: Callable[[NDArray[np.float32]], tuple[float, float]],
) -> tuple[NDArray[np.float32] | None, dict[str, object]]:
    """The label weights of the chosen ``(prior docs, weight)`` pair, or None when no pair
    lifts macro-F1 without lowering micro-F1, and what was tried. ``measure`` gives the
    (micro-F1, macro-F1) of document scores (cross-fitted, on out-of-fold scores)."""
    base_micro, base_macro = measure(doc_scores)
    tried: dict[str, list[float]] = {"none": [round(base_micro, 6), round(base_macro, 6)]}
    best: tuple[float, float, float] | None = None
    for m in NAME_PRIOR_DOCS:
        for b in NAME_WEIGHTS:
            micro, macro = measure(boost(doc_scores, similarity, label_weights(positives, m, b)))
            tried[f"prior_docs={m:g},weight={b:g}"] = [round(micro, 6), round(macro, 6)]
            if micro >= base_micro - 1e-12 and macro > (best[0] if best else base_macro) + 1e-12:
                best = (macro, m, b)
    report: dict[str, object] = {"tried": tried, "chosen": None}
    if best is None:
        return None, report
    report["chosen"] = {"prior_docs": best[1], "weight": best[2]}
    return label_weights(positives, best[1], best[2]), report
