"""Evaluate a saved model on a labelled corpus at paragraph and document level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from classifier.artifact import LoadedModel
from classifier.corpus import ReadReport, read_corpus
from classifier.dataset import PreparedCorpus, prepare_corpus
from classifier.errors import NotTrainedError
from classifier.evaluate import evaluate_scores
from classifier.model import TopicClassifier
from classifier.progress import ProgressHook, no_progress
from training.train import DECISION_RULE, counted

SCORE_BATCH = 4096


@dataclass(frozen=True)
class Scored:
    """A corpus prepared and scored: what a report plots beyond the metrics."""

    data: PreparedCorpus
    par_scores: NDArray[np.floating]
    doc_scores: NDArray[np.floating]


def evaluate(
    loaded: LoadedModel,
    corpus: Sequence[str | Path],
    *,
    jobs: int = 1,
    strict: bool = False,
    progress: ProgressHook = no_progress,
) -> dict[str, Any]:
    """Score every paragraph and document of ``corpus`` with the model's own decision rule."""
    return evaluate_scored(loaded, corpus, jobs=jobs, strict=strict, progress=progress)[0]


def evaluate_scored(
    loaded: LoadedModel,
    corpus: Sequence[str | Path],
    *,
    jobs: int = 1,
    strict: bool = False,
    progress: ProgressHook = no_progress,
) -> tuple[dict[str, Any], Scored]:
    """``evaluate``, with the prepared corpus and its score matrices."""
    model = loaded.model
    report = ReadReport()
    docs = counted(read_corpus(corpus, report=report, strict=strict), progress("reading", None))
    data = prepare_corpus(docs, model.config.text, jobs, progress)
    if data.n_documents == 0:
        raise NotTrainedError(f"no valid document to evaluate in {', '.join(map(str, corpus))}")
    result: dict[str, Any] = {
        "model": loaded.ref,
        "corpus": report.summary() | {"paragraphs": data.n_paragraphs},
        "decision_rule": DECISION_RULE,
        "conventions": "P@k = hits in top k / k; macro over labels in the gold standard; "
        "gold labels unknown to the model count as misses",
    }
    scored = score_prepared(model, data)
    result.update(metrics_of(model, scored))
    unseen = {t for tags in data.doc_tags for t in tags} - set(model.labels)
    result["labels_unknown_to_model"] = sorted(unseen)
    return result, scored


def evaluate_prepared(model: TopicClassifier, data: PreparedCorpus) -> dict[str, Any]:
    """Paragraph and document metrics of a prepared corpus under the model's decision rule."""
    return metrics_of(model, score_prepared(model, data))


def score_prepared(model: TopicClassifier, data: PreparedCorpus) -> Scored:
    """The paragraph and document score matrices of a prepared corpus: document by document
    in batches of about SCORE_BATCH paragraphs (bounded memory), each scored as prediction
    scores it (with the second level when the model has one)."""
    par_doc = np.asarray(data.par_doc)
    par_len = np.asarray(data.par_len, dtype=float)
    doc_parts, par_parts = [], []
    starts = np.searchsorted(par_doc, np.arange(0, data.n_documents + 1))
    first = 0
    while first < data.n_documents:
        last = int(np.searchsorted(starts, starts[first] + SCORE_BATCH, side="right")) - 1
        last = min(max(last, first + 1), data.n_documents)
        rows = slice(starts[first], starts[last])
        docs, pars = model.score_prepared_documents(
            data.texts[rows], par_doc[rows] - first, par_len[rows], last - first
        )
        doc_parts.append(docs)
        par_parts.append(pars)
        first = last
    n_labels = len(model.labels)
    doc_scores = np.vstack(doc_parts) if doc_parts else np.zeros((0, n_labels), np.float32)
    par_scores = np.vstack(par_parts) if par_parts else np.zeros((0, n_labels), np.float32)
    return Scored(data, par_scores, doc_scores)


def metrics_of(model: TopicClassifier, scored: Scored) -> dict[str, Any]:
    """Paragraph and document metrics under the model's decision rule."""
    data, cfg, labels = scored.data, model.config, list(model.labels)
    return {
        level: evaluate_scores(
            scores, gold, labels, model.threshold(level), cfg.min_labels, cfg.max_labels
        )
        for level, scores, gold in (
            ("paragraph", scored.par_scores, data.paragraph_tags()),
            ("document", scored.doc_scores, data.doc_tags),
        )
    }
