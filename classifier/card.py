"""A model card: one version's data, settings, metrics and known limits, as Markdown, made
from its metadata alone (``tagger models --card``, ``GET /v1/model/card``, the eval report)."""

from __future__ import annotations

from typing import Any

SETTINGS = (
    "learner",
    "C",
    "ngram_max",
    "char_ngram_max",
    "max_features",
    "min_df",
    "prune_below",
    "aggregation",
    "min_labels",
    "max_labels",
    "label_thresholds",
    "neighbours",
    "min_label_docs",
    "rare_labels",
    "validation_fraction",
    "refit_on_all",
    "segmenter",
    "seed",
)
FEW_DOCUMENTS = 10  # a label trained on fewer documents than this is named as a limit
SMALL_VALIDATION = 200


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _metrics(val: dict[str, Any]) -> list[str]:
    lines = [
        "| level | micro-F1 | micro-P | micro-R | macro-F1 | P@1 | P@3 |",
        "|---|" + "---|" * 6,
    ]
    for level in ("document", "paragraph"):
        m = val.get(level) or {}
        micro, macro = m.get("micro", {}), m.get("macro", {})
        lines.append(
            f"| {level} | {_f(micro.get('f1'))} | {_f(micro.get('precision'))} | "
            f"{_f(micro.get('recall'))} | {_f(macro.get('f1'))} | {_f(m.get('p@1'))} | "
            f"{_f(m.get('p@3'))} |"
        )
    return lines


def known_limits(meta: dict[str, Any]) -> list[str]:
    """What a user should know before trusting this version's tags."""
    cfg, training = meta.get("config", {}), meta.get("training", {})
    limits = [
        "Tags only from the labels listed above: a document about anything else still gets the "
        "closest ones (at least min_labels), with low scores; read the scores, not just the "
        "tags.",
        "Trained on the text of its corpus: other scripts or registers (traditional "
        "characters, English on a Chinese model) score lower and less reliably.",
    ]
    dropped = (meta.get("labels_dropped") or {}).get("labels") or {}
    if dropped:
        limits.append(
            f"{len(dropped)} tags too rare to learn are never given: "
            + ", ".join(sorted(dropped)[:20])
            + ("…" if len(dropped) > 20 else "")
        )
    support = training.get("label_documents") or {}
    few = sorted(t for t, n in support.items() if n < FEW_DOCUMENTS)
    if few:
        limits.append(
            f"{len(few)} labels learnt from fewer than {FEW_DOCUMENTS} documents "
            "(their F1 is the least certain): " + ", ".join(few[:20])
        )
    n_val = training.get("validation_documents")
    if isinstance(n_val, int) and n_val < SMALL_VALIDATION:
        limits.append(
            f"The validation metrics come from {n_val} documents only: a few points "
            "of F1 either way are noise."
        )
    if cfg.get("refit_on_all", True):
        limits.append(
            "The final weights were refitted on the validation documents too: "
            "the metrics were measured before that refit (cross-fitted thresholds)."
        )
    return limits


def model_card(meta: dict[str, Any], promotion: dict[str, Any] | None = None) -> str:
    """The card of one version as Markdown."""
    corpus, cfg = meta.get("corpus", {}), meta.get("config", {})
    training, decision = meta.get("training", {}), meta.get("decision", {})
    labels = meta.get("labels", [])
    lines = [f"# Model card: {meta.get('name')}@{meta.get('version')}", ""]
    lines.append(
        f"Created {meta.get('created_at', '-')} by tagger "
        f"{meta.get('versions', {}).get('tagger', '-')}."
    )
    if promotion:
        lines.append(f"Status: **{promotion.get('status')}** ({promotion.get('reason')}).")
    lines += ["", "## Data", ""]
    lines.append(
        f"- corpus: {', '.join(map(str, corpus.get('paths', []))) or '-'} "
        f"(sha256 {str(corpus.get('sha256', '-'))[:12]})"
    )
    lines.append(
        f"- {corpus.get('documents_read', '-')} documents read, "
        f"{corpus.get('documents_skipped', 0)} skipped, "
        f"{corpus.get('paragraphs', '-')} paragraphs"
    )
    lines.append(
        f"- fitted on {training.get('fit_documents', '-')} documents, validated on "
        f"{training.get('validation_documents', '-')}"
    )
    lines.append(
        f"- {len(labels)} labels: {', '.join(labels[:40])}" + ("…" if len(labels) > 40 else "")
    )
    lines += ["", "## Settings", ""]
    lines += [f"- {k}: {cfg[k]}" for k in SETTINGS if k in cfg]
    thresholds = decision.get("thresholds", {})
    lines.append(
        f"- thresholds: document {_f(thresholds.get('document'))}, paragraph "
        f"{_f(thresholds.get('paragraph'))}; rule: {decision.get('rule', '-')}"
    )
    lines.append(
        f"- features: {training.get('features', '-')}, weights kept: {training.get('weights', '-')}"
    )
    lines += ["", "## Metrics (validation split)", ""]
    lines += _metrics(meta.get("metrics", {}).get("validation", {}))
    lines += ["", "## Known limits", ""]
    lines += [f"- {limit}" for limit in known_limits(meta)]
    versions = meta.get("versions", {})
    lines += ["", "## Software", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)
