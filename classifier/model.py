"""The trained tagger: prepared text to calibrated scores (``Scorer``), scores to tags
(``TopicClassifier``). Both are immutable: fitting builds them once (``classifier.fit``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from classifier.calibration import Calibration
from classifier.config import TrainingConfig
from classifier.dataset import join_by_document
from classifier.decision import Threshold, decide
from classifier.features import Features
from classifier.linear import LinearWeights
from classifier.names import LabelNames
from classifier.neighbours import NeighbourIndex
from classifier.stacking import Stacker, document_views
from classifier.text import PreparedText, prepare_paragraph, prepare_text
from classifier.thresholds import Thresholds

AGGREGATIONS = ("mean", "max", "weighted", "whole", "mean+whole")
# Paragraphs scored at once between two checkpoints of a prediction, and at most in one go
# (rows are independent: slicing gives the same scores; a slice bounds the memory of the
# tokens and features made for it, whatever the length of the input)
SCORE_SLICE = 64
MAX_SCORE_ROWS = 2048


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


def mix(
    linear: NDArray[np.float32], neighbour: NDArray[np.float32] | None, weight: float
) -> NDArray[np.float32]:
    """``(1 - weight) * linear + weight * neighbour`` (just ``linear`` for weight 0)."""
    if neighbour is None or weight == 0:
        return linear
    return np.asarray((1 - weight) * linear + weight * neighbour, dtype=np.float32)


def in_slices(
    score: Callable[[Sequence[str]], NDArray[np.float32]], prepared: Sequence[str]
) -> NDArray[np.float32]:
    """``score(prepared)``, called on ``MAX_SCORE_ROWS`` rows at a time (rows are
    independent, so the same rows; a slice bounds the memory of its tokens and features)."""
    if len(prepared) <= MAX_SCORE_ROWS:
        return score(prepared)
    return np.vstack(
        [score(prepared[i : i + MAX_SCORE_ROWS]) for i in range(0, len(prepared), MAX_SCORE_ROWS)]
    )


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


@dataclass(frozen=True)
class Scorer:
    """Prepared text to scores in [0, 1]: TF-IDF features, linear weights, one sigmoid, and
    optionally the nearest training documents' tags blended in (``(1 - w) * linear + w *
    neighbours``); documents from their paragraphs under ``aggregation``."""

    features: Features
    weights: LinearWeights
    calibration: Calibration = Calibration()
    neighbours: NeighbourIndex | None = None
    neighbour_weight: float = 0.0
    aggregation: str = "mean"

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}")
        if self.neighbours is None and self.neighbour_weight:
            raise ValueError("a neighbour weight needs a neighbour index")

    def transform(self, prepared: Sequence[str]) -> sp.csr_matrix:
        return self.features.transform(prepared)

    def blend(self, x: sp.csr_matrix, calibrated: NDArray[np.float32]) -> NDArray[np.float32]:
        """Calibrated linear scores blended with the neighbour scores (if the model has any)."""
        if self.neighbours is None or self.neighbour_weight == 0:
            return calibrated
        return mix(calibrated, self.neighbours.scores(x), self.neighbour_weight)

    def paragraph_scores(self, prepared: Sequence[str]) -> NDArray[np.float32]:
        """Scores of prepared texts, one row each, one column per label (``MAX_SCORE_ROWS``
        rows at a time)."""
        return in_slices(self._paragraph_scores, prepared)

    def _paragraph_scores(self, prepared: Sequence[str]) -> NDArray[np.float32]:
        x = self.transform(prepared)
        return self.blend(x, self.calibration.apply(self.weights.decision(x)))

    def decisions(self, prepared: Sequence[str]) -> NDArray[np.float32]:
        """Raw linear values of prepared texts (what a second level reads), one row each
        (``MAX_SCORE_ROWS`` rows at a time)."""
        return in_slices(lambda part: self.weights.decision(self.transform(part)), prepared)

    def document_scores(
        self,
        prepared: Sequence[str],
        par_doc: NDArray[np.integer],
        par_len: NDArray[np.floating],
        n_docs: int,
        par_scores: NDArray[np.float32],
    ) -> NDArray[np.float32]:
        """Document scores from their paragraphs' (``prepared``, scored ``par_scores``).

        ``mean``, ``weighted`` (by length) and ``max`` combine paragraph scores; ``whole``
        scores each document's text as one; ``mean+whole`` averages ``mean`` and ``whole``.
        """
        rule = self.aggregation
        if rule in ("mean", "weighted", "max"):
            if len(par_doc) == n_docs:  # one paragraph each (every document has one at least):
                # the paragraph scores are the document scores (the same array, not a copy)
                return par_scores
            return aggregate(par_scores, par_doc, n_docs, rule, par_len)
        whole = self.paragraph_scores(join_by_document(prepared, par_doc, n_docs))
        if rule == "whole":
            return whole
        mean = aggregate(par_scores, par_doc, n_docs, "mean")
        return np.asarray(0.5 * (mean + whole), dtype=np.float32)


def whole_decisions(
    scorer: Scorer,
    prepared: Sequence[str],
    par_doc: NDArray[np.integer],
    n_docs: int,
    par_decisions: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Raw first-level values of each document as one text: a document of one paragraph
    is that paragraph (the same text, so the same values, not computed twice)."""
    par_doc = np.asarray(par_doc)
    counts = np.bincount(par_doc, minlength=n_docs)
    out = np.zeros((n_docs, par_decisions.shape[1]), dtype=np.float32)
    single = np.flatnonzero(counts[par_doc] == 1)
    out[par_doc[single]] = par_decisions[single]
    multi = np.flatnonzero(counts > 1)
    if len(multi):
        joined = join_by_document(prepared, par_doc, n_docs)
        out[multi] = scorer.decisions([joined[d] for d in multi])
    return out


@dataclass(frozen=True)
class TopicClassifier:
    """Everything prediction needs: the (resolved) training configuration, the labels, the
    scorer, the second level if any (document scores from every label's first-level scores)
    and the tuned thresholds of the decision rule."""

    config: TrainingConfig
    labels: tuple[str, ...]
    scorer: Scorer
    thresholds: Thresholds = field(default_factory=Thresholds)
    stacker: Stacker | None = None
    # the labels' names as evidence for the document scores (``classifier.names``)
    names: LabelNames | None = None

    def __post_init__(self) -> None:
        if self.scorer.weights.n_labels != len(self.labels):
            raise ValueError("one weight column per label")
        if self.stacker is not None:
            if self.stacker.n_labels != len(self.labels):
                raise ValueError("one level-2 weight column per label")
            if self.scorer.neighbours is not None:
                raise ValueError("a stacked model blends no neighbours")
        if self.names is not None and self.names.vectors.shape != (
            self.scorer.features.n_features,
            len(self.labels),
        ):
            raise ValueError("one name column per label, one row per feature")

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @property
    def segmenter(self) -> str:
        return self.config.segmenter

    def threshold(self, level: str) -> Threshold:
        """The tuned threshold(s) of a level: per label when tuned so, else one number."""
        return self.thresholds.of(level)

    # --- scores -------------------------------------------------------------------------
    def prepare(self, text: str) -> PreparedText:
        """Split and tokenize a text exactly as in training (``text.prepare_text``)."""
        return prepare_text(text, self.config.text)

    def split(self, text: str) -> list[str]:
        """A text's paragraphs as the model sees them (never zero)."""
        return self.prepare(text).paragraphs

    def score_prepared(self, prepared: Sequence[str]) -> NDArray[np.float32]:
        return self.scorer.paragraph_scores(prepared)

    def score_paragraphs(self, paragraphs: Sequence[str]) -> NDArray[np.float32]:
        """Scores in [0, 1] of each paragraph as one text, one column per label."""
        settings = self.config.text
        return self.score_prepared([prepare_paragraph(p, settings) for p in paragraphs])

    def score_documents(
        self, texts: Sequence[str], checkpoint: Callable[[], None] | None = None
    ) -> tuple[NDArray[np.float32], list[list[str]], NDArray[np.float32]]:
        """Return document scores, each document's paragraphs and the paragraph scores.

        ``checkpoint`` (if any) is called between slices of the work, each text and each
        paragraph being prepared and every ``SCORE_SLICE`` paragraphs scored: it raises to
        stop a prediction (a deadline, a client gone).
        """
        prepared = []
        for t in texts:
            if checkpoint is not None:
                checkpoint()
            prepared.append(prepare_text(t, self.config.text, checkpoint))
        tokens = [p for text in prepared for p in text.tokens]
        counts = [len(text.tokens) for text in prepared]
        par_doc = np.repeat(np.arange(len(prepared)), counts)
        if self.scorer.aggregation == "weighted":
            lengths = np.array([n for text in prepared for n in text.lengths], dtype=float)
        else:
            lengths = np.ones(len(tokens))
        docs, par_scores = self.score_prepared_documents(
            tokens, par_doc, lengths, len(prepared), checkpoint
        )
        return docs, [text.paragraphs for text in prepared], par_scores

    def score_prepared_documents(
        self,
        tokens: Sequence[str],
        par_doc: NDArray[np.integer],
        par_len: NDArray[np.floating],
        n_docs: int,
        checkpoint: Callable[[], None] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Document and paragraph scores of prepared paragraphs (``par_doc``: each one's
        document), as ``score_documents`` computes them: the second level's document scores
        when the model has one, else the paragraph scores aggregated; then, with ``names``,
        moved by the labels' names (``classifier.names``)."""
        score = self.score_prepared if self.stacker is None else self.scorer.decisions
        names = self.names

        def scored(part: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
            if names is None:
                return score(part), None
            x = self.scorer.transform(part)  # once, for the weights and the names
            values = self.scorer.weights.decision(x)
            if self.stacker is None:
                values = self.scorer.blend(x, self.scorer.calibration.apply(values))
            return values, names.paragraph_similarity_dense(x)

        step = MAX_SCORE_ROWS if checkpoint is None else SCORE_SLICE
        parts = []
        for start in range(0, max(len(tokens), 1), step):
            if checkpoint is not None and len(tokens) > SCORE_SLICE:
                checkpoint()
            parts.append(scored(tokens[start : start + step]))
        par_scores = parts[0][0] if len(parts) == 1 else np.vstack([p[0] for p in parts])
        if self.stacker is not None:
            docs = self.stacked_scores(tokens, par_doc, n_docs, par_scores, checkpoint)
            par_scores = self.scorer.calibration.apply(par_scores)
        else:
            docs = self.scorer.document_scores(tokens, par_doc, par_len, n_docs, par_scores)
        if names is not None:
            similarity = parts[0][1] if len(parts) == 1 else np.vstack([p[1] for p in parts])
            docs = names.boosted(docs, similarity, par_doc)
        return docs, par_scores

    def stacked_scores(
        self,
        prepared: Sequence[str],
        par_doc: NDArray[np.integer],
        n_docs: int,
        par_decisions: NDArray[np.float32],
        checkpoint: Callable[[], None] | None = None,
    ) -> NDArray[np.float32]:
        """Document scores of the second level, from the paragraphs' raw first-level values
        (and the whole documents' when it reads them)."""
        assert self.stacker is not None
        whole = None
        if self.stacker.n_views > 1:
            whole = whole_decisions(self.scorer, prepared, par_doc, n_docs, par_decisions)
            if checkpoint is not None:
                checkpoint()
        return self.stacker.scores(document_views(par_decisions, par_doc, n_docs, whole))

    # --- decisions ----------------------------------------------------------------------
    def _tags(
        self, scores: NDArray[np.floating], level: str, top_k: int | None, threshold: float | None
    ) -> list[list[TagScore]]:
        k = top_k or self.config.max_labels
        if threshold is None:
            chosen = decide(scores, self.threshold(level), self.config.min_labels, k)
        else:
            chosen = decide(scores, threshold, 0, k)
        return [[TagScore(self.labels[i], round(s, 6)) for i, s in row] for row in chosen]

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        threshold: float | None = None,
        paragraphs: bool = False,
        checkpoint: Callable[[], None] | None = None,
    ) -> list[Prediction]:
        """Tag each text; with ``paragraphs`` also tag each of its paragraphs.

        Without ``threshold`` the tuned thresholds apply and at least ``min_labels`` tags are
        returned; with it, exactly the tags scoring at least ``threshold`` (up to ``top_k``).
        ``checkpoint`` is called between slices of the work (see ``score_documents``).
        """
        docs, splits, par_scores = self.score_documents(texts, checkpoint)
        doc_tags = self._tags(docs, "document", top_k, threshold)
        if not paragraphs:
            return [Prediction(tags) for tags in doc_tags]
        par_tags = iter(self._tags(par_scores, "paragraph", top_k, threshold))
        return [
            Prediction(tags, [ParagraphPrediction(p, next(par_tags)) for p in ps])
            for tags, ps in zip(doc_tags, splits, strict=True)
        ]
