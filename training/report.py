"""Readable tables and JSON records for the command line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.table import Table

from classifier.corpus import Document
from classifier.explain import Evidence, Explanation, explain_predictions
from classifier.model import Prediction, TagScore, TopicClassifier

HEADLINE = (
    ("micro-F1", lambda m: m["micro"]["f1"]),
    ("micro-P", lambda m: m["micro"]["precision"]),
    ("micro-R", lambda m: m["micro"]["recall"]),
    ("macro-F1", lambda m: m["macro"]["f1"]),
    ("macro-P", lambda m: m["macro"]["precision"]),
    ("macro-R", lambda m: m["macro"]["recall"]),
    ("P@1", lambda m: m["p@1"]),
    ("P@3", lambda m: m["p@3"]),
    ("P@5", lambda m: m["p@5"]),
    ("nDCG@5", lambda m: m["ndcg@5"]),
    ("labels/item", lambda m: m["labels_per_item"]),
    ("threshold", lambda m: m["threshold"]),
)


def metrics_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{result['model']} on {result['corpus']['documents_read']} documents / "
        f"{result['corpus']['paragraphs']} paragraphs",
        min_width=72,
    )
    table.add_column("metric")
    table.add_column("paragraph", justify="right")
    table.add_column("document", justify="right")
    for name, get in HEADLINE:
        table.add_row(name, _num(get(result["paragraph"])), _num(get(result["document"])))
    table.caption = (
        f"decision rule: {result['decision_rule']}. {result['conventions']}. "
        f"{len(result['labels_unknown_to_model'])} gold labels unknown to the model."
    )
    table.caption_justify = "left"
    return table


def per_label_table(per_label: dict[str, dict[str, float]], n: int) -> Table:
    table = Table(title=f"document level, {min(n, len(per_label))} labels by support")
    for col in ("label", "support", "precision", "recall", "F1"):
        table.add_column(col, justify="left" if col == "label" else "right")
    ranked = sorted(per_label.items(), key=lambda kv: -kv[1]["support"])[:n]
    for label, m in ranked:
        table.add_row(
            label,
            str(m["support"]),
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['f1']:.3f}",
        )
    return table


def models_table(rows: list[dict[str, Any]]) -> Table:
    """Every version: which is served, which are candidates and why, headline metrics."""
    table = Table(title="trained models (metrics on the validation split)")
    table.add_column("model", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for col in ("docs", "labels", "doc µF1", "doc P@1", "par µF1"):
        table.add_column(col, justify="right")
    table.add_column("why", overflow="fold", min_width=30)
    for meta in rows:
        val = meta.get("metrics", {}).get("validation", {})
        doc, par = val.get("document", {}), val.get("paragraph", {})
        promotion = meta.get("promotion", {})
        table.add_row(
            f"{meta.get('name')}@{meta.get('version')}",
            str(promotion.get("status", "")),
            str(meta.get("created_at", ""))[:16].replace("T", " "),
            str(meta.get("corpus", {}).get("documents_read", "")),
            str(len(meta.get("labels", []))),
            _fmt(doc.get("micro", {}).get("f1")),
            _fmt(doc.get("p@1")),
            _fmt(par.get("micro", {}).get("f1")),
            str(promotion.get("reason", "")),
        )
    return table


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _evidence_records(evidence: list[Evidence]) -> list[dict[str, Any]]:
    return [
        {"term": e.term, "contribution": e.contribution, "spans": [list(s) for s in e.spans]}
        for e in evidence
    ]


def _tag_records(
    tags: list[TagScore],
    evidence: dict[str, list[Evidence]] | None,
    names: dict[str, list[Evidence]] | None = None,
) -> list[dict[str, Any]]:
    """Tags as the API gives them: with ``evidence``, each one's; with ``names``, the terms
    shared with the names of the tags they raised."""
    records = [{"tag": t.tag, "score": t.score} for t in tags]
    if evidence is not None:
        for record in records:
            record["evidence"] = _evidence_records(evidence.get(record["tag"], []))
            if names and record["tag"] in names:
                record["name_evidence"] = _evidence_records(names[record["tag"]])
    return records


def prediction_record(
    doc_id: str, pred: Prediction, why: Explanation | None = None
) -> dict[str, Any]:
    """A document's tags as JSON (with ``why``, each tag's evidence, as the API gives it)."""
    record: dict[str, Any] = {
        "id": doc_id,
        "tags": _tag_records(pred.tags, why and why.tags, why and why.names),
    }
    if pred.paragraphs is not None:
        by_paragraph = why.paragraphs if why is not None else None
        record["paragraphs"] = [
            {
                "text": p.text,
                "tags": _tag_records(p.tags, by_paragraph[i] if by_paragraph else None),
            }
            for i, p in enumerate(pred.paragraphs)
        ]
    return record


def prediction_lines(
    model: TopicClassifier,
    documents: Iterable[Document],
    top_k: int | None,
    threshold: float | None,
    paragraphs: bool,
    batch: int = 64,
    batch_chars: int = 4_000_000,
    explain: bool = False,
) -> Iterator[str]:
    """One JSON line per document (``prediction_record``), tagged in batches of at most
    ``batch`` documents and (unless one document is longer) ``batch_chars`` characters."""
    chunk: list[Document] = []
    size = 0
    for doc in documents:
        if chunk and (len(chunk) == batch or size + len(doc.text) > batch_chars):
            yield from _tagged(model, chunk, top_k, threshold, paragraphs, explain)
            chunk, size = [], 0
        chunk.append(doc)
        size += len(doc.text)
    if chunk:
        yield from _tagged(model, chunk, top_k, threshold, paragraphs, explain)


def _tagged(
    model: TopicClassifier,
    chunk: list[Document],
    top_k: int | None,
    threshold: float | None,
    paragraphs: bool,
    explain: bool = False,
) -> Iterator[str]:
    texts = [d.text for d in chunk]
    predictions = model.predict(texts, top_k=top_k, threshold=threshold, paragraphs=paragraphs)
    why: list[Explanation | None] = [None] * len(chunk)
    if explain:
        why = list(explain_predictions(model, texts, predictions))
    for doc, pred, w in zip(chunk, predictions, why, strict=True):
        yield json.dumps(prediction_record(doc.id, pred, w), ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)
