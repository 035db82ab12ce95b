"""``tagger eval --report``: one self-contained HTML file a person reads.

Plots (matplotlib, Agg backend, embedded as base64 PNG; nothing is fetched when the file is
opened): per-label F1 against training support, micro/macro-F1 as the threshold moves,
calibration, precision-recall, and the label pairs most often confused; then the tables
(headline metrics, every label, the confused pairs) and the model card. All at document
level unless a plot says otherwise.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from classifier.artifact import LoadedModel
from classifier.card import model_card
from classifier.decision import THRESHOLD_GRID, at, select, top_k
from classifier.labels import label_matrix
from training.evaluate import Scored
from training.report import HEADLINE

PLOTS = ("per_label_f1", "threshold_f1", "calibration", "precision_recall", "confusions")
N_CONFUSED = 15
N_BINS = 10


# --- the numbers ----------------------------------------------------------------------------
def threshold_curve(
    scores: NDArray[np.floating], gold: NDArray[np.bool_], min_labels: int, max_labels: int
) -> dict[str, list[float]]:
    """Micro- and macro-F1 under the decision rule at each global threshold of the grid."""
    idx, top = top_k(scores, max_labels)
    hits = np.take_along_axis(gold, idx, axis=1)
    support = gold.sum(axis=0)
    n_gold, in_gold = int(support.sum()), support > 0
    micro, macro = [], []
    for t in THRESHOLD_GRID:
        chosen = select(top, at(float(t), idx), min_labels)
        tp_l = np.bincount(idx[chosen & hits], minlength=gold.shape[1])
        pred_l = np.bincount(idx[chosen], minlength=gold.shape[1])
        tp, n_pred = int(tp_l.sum()), int(pred_l.sum())
        micro.append(2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0)
        f1_l = np.divide(2 * tp_l, pred_l + support, out=np.zeros(len(support)), where=in_gold)
        macro.append(float(f1_l[in_gold].mean()) if in_gold.any() else 0.0)
    return {"threshold": THRESHOLD_GRID.tolist(), "micro": micro, "macro": macro}


def calibration_bins(scores: NDArray[np.floating], gold: NDArray[np.bool_]) -> dict[str, list]:
    """Mean score, fraction of true labels and count in each of ``N_BINS`` score bins."""
    s, y = scores.ravel(), gold.ravel()
    which = np.minimum((s * N_BINS).astype(int), N_BINS - 1)
    count = np.bincount(which, minlength=N_BINS)
    mean = np.bincount(which, weights=s, minlength=N_BINS)
    pos = np.bincount(which, weights=y.astype(float), minlength=N_BINS)
    keep = count > 0
    return {
        "score": (mean[keep] / count[keep]).tolist(),
        "fraction_true": (pos[keep] / count[keep]).tolist(),
        "count": count[keep].tolist(),
    }


def confused_pairs(
    idx: NDArray[np.intp], chosen: NDArray[np.bool_], gold: Sequence[Sequence[str]], labels
) -> list[tuple[str, str, int]]:
    """(gold label missed, label given instead, documents) most often, for documents with both."""
    pairs: Counter[tuple[str, str]] = Counter()
    for row, tags in enumerate(gold):
        given = {labels[i] for i in idx[row][chosen[row]]}
        wanted = set(tags)
        for g in wanted - given:
            for p in given - wanted:
                pairs[g, p] += 1
    return [(g, p, n) for (g, p), n in pairs.most_common(N_CONFUSED)]


def report_data(loaded: LoadedModel, result: dict[str, Any], scored: Scored) -> dict[str, Any]:
    """Everything the plots and tables show, as plain numbers."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    model, data = loaded.model, scored.data
    labels, cfg = list(model.labels), model.config
    gold = label_matrix(data.doc_tags, labels).toarray().astype(bool)
    par_gold = label_matrix(data.paragraph_tags(), labels).toarray().astype(bool)
    idx, top = top_k(scored.doc_scores, cfg.max_labels)
    chosen = select(top, at(model.threshold("document"), idx), cfg.min_labels)
    train_support = loaded.metadata.get("training", {}).get("label_documents") or {}
    per_label = result["document"]["per_label"]
    y, s = gold.ravel(), scored.doc_scores.ravel()
    precision, recall, _ = precision_recall_curve(y, s) if y.any() else ([1.0], [0.0], None)
    step = max(1, len(precision) // 500)  # a curve of 500 points draws the same
    return {
        "labels": [
            {
                "label": t,
                "train_support": train_support.get(t),
                **per_label.get(t, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}),
            }
            for t in labels
        ],
        "train_support_known": bool(train_support),
        "threshold_curve": threshold_curve(scored.doc_scores, gold, cfg.min_labels, cfg.max_labels),
        "model_threshold": float(np.mean(model.threshold("document"))),
        "calibration": {
            "document": calibration_bins(scored.doc_scores, gold),
            "paragraph": calibration_bins(scored.par_scores, par_gold),
        },
        "precision_recall": {
            "precision": list(map(float, precision[::step])),
            "recall": list(map(float, recall[::step])),
            "average_precision": float(average_precision_score(y, s)) if y.any() else 0.0,
            "operating_point": [
                result["document"]["micro"]["recall"],
                result["document"]["micro"]["precision"],
            ],
        },
        "confusions": confused_pairs(idx, chosen, data.doc_tags, labels),
    }


# --- the plots ------------------------------------------------------------------------------
def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    # labels may be Chinese: a CJK font when one is installed (else DejaVu, boxes for CJK)
    names = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [n for n in ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei") if n in names]
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", *cjk]
    return Figure(figsize=(width, height), layout="constrained")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_per_label(d: dict[str, Any]) -> str:
    fig = _figure()
    ax = fig.subplots()
    rows = d["labels"]
    key = "train_support" if d["train_support_known"] else "support"
    x = np.array([max(r[key] or 0, 0) for r in rows], dtype=float) + 1
    f1 = np.array([r["f1"] for r in rows])
    ax.scatter(x, f1, s=18, alpha=0.7)
    for i in np.argsort(f1)[:5]:  # the worst labels, named
        ax.annotate(rows[i]["label"], (x[i], f1[i]), fontsize=7, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(("training" if key == "train_support" else "evaluation") + " documents + 1")
    ax.set_ylabel("document F1 on this corpus")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Per-label F1 against training support")
    return _png(fig)


def plot_threshold(d: dict[str, Any]) -> str:
    fig = _figure()
    ax = fig.subplots()
    c = d["threshold_curve"]
    ax.plot(c["threshold"], c["micro"], label="micro-F1")
    ax.plot(c["threshold"], c["macro"], label="macro-F1")
    ax.axvline(d["model_threshold"], color="grey", ls="--", label="the model's threshold")
    ax.set_xlabel("global threshold (at least min_labels, at most max_labels)")
    ax.set_ylabel("document F1")
    ax.set_title("Threshold against F1")
    ax.legend()
    return _png(fig)


def plot_calibration(d: dict[str, Any]) -> str:
    fig = _figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfectly calibrated")
    for level, bins in d["calibration"].items():
        ax.plot(bins["score"], bins["fraction_true"], marker="o", label=level)
    ax.set_xlabel("score (mean in each of 10 bins)")
    ax.set_ylabel("fraction of labels that are right")
    ax.set_title("Calibration")
    ax.legend()
    return _png(fig)


def plot_precision_recall(d: dict[str, Any]) -> str:
    fig = _figure()
    ax = fig.subplots()
    pr = d["precision_recall"]
    ax.plot(pr["recall"], pr["precision"], label=f"micro (AP {pr['average_precision']:.3f})")
    ax.plot(*pr["operating_point"], "o", color="C3", label="the decision rule")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall (every document × label score)")
    ax.legend()
    return _png(fig)


def plot_confusions(d: dict[str, Any]) -> str:
    pairs = d["confusions"]
    fig = _figure(height=max(2.5, 0.3 * len(pairs) + 1.2))
    ax = fig.subplots()
    if pairs:
        names = [f"{g} → {p}" for g, p, _ in reversed(pairs)]
        ax.barh(names, [n for _, _, n in reversed(pairs)])
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.text(0.5, 0.5, "no document missed one label for another", ha="center")
    ax.set_xlabel("documents")
    ax.set_title("Most confused: gold label missed → label given instead")
    return _png(fig)


# --- the page -------------------------------------------------------------------------------
def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)


STYLE = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px}
td{text-align:right}td:first-child{text-align:left}img{max-width:100%;display:block}
figure{margin:1.5em 0}pre{white-space:pre-wrap;background:#f6f6f6;padding:1em}"""


def render(loaded: LoadedModel, result: dict[str, Any], d: dict[str, Any]) -> str:
    """The report page: one string of HTML with every image inside it."""
    plots = {
        "per_label_f1": plot_per_label(d),
        "threshold_f1": plot_threshold(d),
        "calibration": plot_calibration(d),
        "precision_recall": plot_precision_recall(d),
        "confusions": plot_confusions(d),
    }
    figures = "".join(
        f'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,{png}"></figure>'
        for name, png in plots.items()
    )
    headline = _table(
        ["metric", "paragraph", "document"],
        [(n, get(result["paragraph"]), get(result["document"])) for n, get in HEADLINE],
    )
    labels = _table(
        ["label", "training docs", "support", "precision", "recall", "F1"],
        [
            (r["label"], r["train_support"], r["support"], r["precision"], r["recall"], r["f1"])
            for r in sorted(d["labels"], key=lambda r: -(r["support"] or 0))
        ],
    )
    confused = _table(["gold label missed", "label given instead", "documents"], d["confusions"])
    corpus = result["corpus"]
    title = f"{loaded.ref} on {corpus['documents_read']} documents"
    caption = f"Decision rule: {result['decision_rule']}. {result['conventions']}."
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(caption)}</p>"
        f"<h2>Metrics</h2>{headline}<h2>Plots</h2>{figures}"
        f"<h2>Labels (document level)</h2>{labels}<h2>Most confused pairs</h2>{confused}"
        f"<h2>Model card</h2><pre>{html.escape(model_card(loaded.metadata))}</pre>"
        "</body></html>"
    )


def write_report(path: Path, loaded: LoadedModel, result: dict[str, Any], scored: Scored) -> None:
    """Write the report to ``path`` (through a temporary file renamed over it)."""
    page = render(loaded, result, report_data(loaded, result, scored))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
