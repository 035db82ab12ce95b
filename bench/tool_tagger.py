#!/usr/bin/env python3
"""tagger as a tool of the shared anchor benchmark harness (../shared/bench/anchors).

Implements the harness's generic tool protocol with tagger's own library, so the model that
is scored is tagger's (its tokenizer, TF-IDF, one-vs-rest linear SVMs, calibration), trained
on exactly the paragraphs every other anchor tool sees:

    tool_tagger.py train   PREP_DIR MODEL_DIR [--jobs N] [--set KEY=VALUE ...]
    tool_tagger.py predict PREP_DIR MODEL_DIR SCORES_DIR [--topk 50] [--name tagger]

train reads PREP_DIR/train.jsonl ({"doc","pid","text","labels":[ids]}, one pre-segmented
paragraph per row) into a classifier.dataset.PreparedCorpus (one document per harness "doc",
its tags = the label ids, as strings, of its paragraphs; the harness gives every paragraph
all its document's labels, which is checked) and fits it with classifier.fit.fit_classifier
under TrainingConfig defaults plus the --set overrides. tagger's own validation split,
calibration and thresholds happen inside the harness's training documents; the harness
tunes its own thresholds on val.jsonl from the scores written by predict.

predict writes calibrated scores in [0, 1] (tagger's model.score_prepared, tokenization
included in the timings) for val.jsonl and test.jsonl, top-K per row, as the harness wants.

The harness directory is ANCHORS_DIR (default ../shared/bench/anchors); run with the
project's interpreter (.venv/bin/python) so that `classifier` is importable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS_DIR = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "bench", "anchors"))
sys.path.insert(0, ANCHORS_DIR)
sys.path.insert(1, ROOT)

from common import read_jsonl, save_scores, topk_sparse  # noqa: E402

from classifier import artifact  # noqa: E402
from classifier.config import TrainingConfig, parse_overrides  # noqa: E402
from classifier.dataset import PreparedCorpus  # noqa: E402
from classifier.errors import ClassifierError  # noqa: E402
from classifier.fit import fit_classifier  # noqa: E402
from classifier.paragraphs import visible_len  # noqa: E402
from classifier.text import TextSettings, prepare_paragraph  # noqa: E402

BATCH = 2000


def load_corpus(rows: list[dict], settings: TextSettings) -> PreparedCorpus:
    """One PreparedCorpus document per harness doc, one paragraph per row (in file order)."""
    data = PreparedCorpus()
    doc_index: dict[str, int] = {}
    doc_labels: list[frozenset[int]] = []
    mismatched = []
    for r in rows:
        labels = frozenset(int(x) for x in r["labels"])
        d = doc_index.get(r["doc"])
        if d is None:
            d = doc_index[r["doc"]] = len(data.doc_ids)
            data.doc_ids.append(str(r["doc"]))
            doc_labels.append(labels)
            data.doc_tags.append(tuple(str(x) for x in sorted(labels)))
        elif labels != doc_labels[d]:
            mismatched.append((r["doc"], r["pid"], sorted(labels), sorted(doc_labels[d])))
        data.par_doc.append(d)
        data.par_len.append(visible_len(r["text"]))
    if mismatched:
        doc, pid, got, first = mismatched[0]
        sys.exit(
            f"tool_tagger: {len(mismatched)} paragraph(s) carry labels that differ from their "
            f"document's first paragraph (e.g. doc {doc!r} pid {pid}: {got} vs {first}); "
            "doc_tags = union of the paragraphs' labels would be wrong for them"
        )
    data.texts = [prepare_paragraph(r["text"], settings) for r in rows]
    return data


def train(a: argparse.Namespace) -> None:
    try:
        overrides = parse_overrides(a.set)
        cfg = TrainingConfig().replace(**overrides).resolved()
    except ClassifierError as exc:
        sys.exit(f"tool_tagger: --set: {exc}")
    t0 = time.perf_counter()
    rows = read_jsonl(os.path.join(a.prep, "train.jsonl"))
    data = load_corpus(rows, cfg.text)
    t1 = time.perf_counter()
    model, report = fit_classifier(data, cfg, jobs=a.jobs)
    t2 = time.perf_counter()
    os.makedirs(a.model, exist_ok=True)
    artifact.write(Path(a.model), model, {"name": "harness", "version": "tool_tagger"})
    val_doc = report.validation.get("document", {})
    print(
        json.dumps(
            {
                "n_train": data.n_paragraphs,
                "n_docs": data.n_documents,
                "n_fit_docs": report.n_fit_documents,
                "n_tagger_val_docs": report.n_validation_documents,
                "n_features": report.n_features,
                "n_weights": report.n_weights,
                "n_labels": int(model.n_labels),
                "n_labels_dropped": len(report.labels_dropped),
                "segmenter": cfg.segmenter,
                "overrides": overrides,
                "thresholds": dict(model.thresholds.level),
                "calibration": [model.scorer.calibration.a, model.scorer.calibration.b],
                "tagger_val_doc_micro_f1": (val_doc.get("micro") or {}).get("f1"),
                "prepare_s": round(t1 - t0, 3),
                "fit_s": round(t2 - t1, 3),
            }
        )
    )


def predict(a: argparse.Namespace) -> None:
    n_labels = len(json.load(open(os.path.join(a.prep, "labels.json")))["labels"])
    t0 = time.perf_counter()
    model = artifact.load(Path(a.model)).model
    settings = model.config.text
    prepare_paragraph("预热 warm up", settings)  # the segmenter's dictionary is part of loading
    load_s = time.perf_counter() - t0
    columns = np.array([int(label) for label in model.labels], dtype=np.intp)
    if len(columns) and (columns.min() < 0 or columns.max() >= n_labels):
        sys.exit(f"tool_tagger: model label ids outside 0..{n_labels - 1}")

    def score(texts: list[str]):
        full = np.zeros((len(texts), n_labels), dtype=np.float32)
        for i in range(0, len(texts), BATCH):
            batch = texts[i : i + BATCH]
            prepared = [prepare_paragraph(t, settings) for t in batch]
            full[i : i + len(batch), columns] = model.score_prepared(prepared)
        return topk_sparse(full, a.topk)

    stats: dict[str, Any] = {"load_s": round(load_s, 4)}
    for split in ("val", "test"):
        rows = read_jsonl(os.path.join(a.prep, f"{split}.jsonl"))
        texts = [r["text"] for r in rows]
        t0 = time.perf_counter()
        S = score(texts) if texts else topk_sparse(np.zeros((0, n_labels)), 1)
        dt = time.perf_counter() - t0
        save_scores(os.path.join(a.scores, f"{a.name}.{split}.npz"), S)
        stats[f"{split}_n"] = len(texts)
        stats[f"{split}_predict_s"] = round(dt, 4)
        if split == "test" and texts:
            lat = []
            for t in texts[:100]:
                s = time.perf_counter()
                score([t])
                lat.append(time.perf_counter() - s)
            stats["single_p50_ms"] = round(1000 * float(np.median(lat)), 3)
    with open(os.path.join(a.scores, f"{a.name}.predict.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("prep")
    t.add_argument("model")
    t.add_argument("--jobs", type=int, default=1)
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one classifier.config.TrainingConfig field",
    )
    p = sub.add_parser("predict")
    p.add_argument("prep")
    p.add_argument("model")
    p.add_argument("scores")
    p.add_argument("--name", default="tagger")
    p.add_argument("--topk", type=int, default=50)
    a = ap.parse_args()
    train(a) if a.cmd == "train" else predict(a)


if __name__ == "__main__":
    main()
