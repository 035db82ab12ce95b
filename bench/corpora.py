"""Train tagger on each corpus's train/ split, evaluate on its test/ split, print one table.

    python -m bench.corpora [--data ../shared/data] [--corpora fudan tiku reuters21578]
                            [--jobs 2] [--set KEY=VALUE ...] [--tune] [--out bench/out]

Everything runs end to end from the raw corpus files: tagger's own paragraph splitting and
segmentation, thresholds (and with --tune the hyperparameters) chosen on a validation split
of train/ only; train time includes tuning. Results go to
``OUT/corpora-<timestamp>.json`` as well as to the screen.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import library
from bench.harness import Report, arguments, logger, markdown_table

CORPORA = ("reuters21578", "tiku", "fudan")
COLUMNS = (
    "corpus",
    "val doc µF1",
    "doc µF1",
    "doc macro-F1",
    "doc P@1",
    "par µF1",
    "par macro-F1",
    "par P@1",
    "train s",
    "eval s",
    "model MB",
)
log = logger("corpora")


def run_corpus(
    data: Path, corpus: str, cfg: Any, jobs: int, models: Path, search: bool
) -> dict[str, Any]:
    """Train on ``corpus``/train (with ``search``: tune first), score ``corpus``/test."""
    started = time.perf_counter()
    result = library.train([data / corpus / "train"], models, corpus, cfg, jobs, tune=search)
    train_s = time.perf_counter() - started
    version = library.load(models, corpus)
    started = time.perf_counter()
    scores = library.evaluate(version, data / corpus / "test", jobs=jobs)
    eval_s = time.perf_counter() - started
    for level in ("paragraph", "document"):
        scores[level].pop("per_label")
    return {
        "corpus": corpus,
        "train_s": train_s,
        "eval_s": eval_s,
        "model_mb": library.model_mb(result.folder),
        "training": result.metadata["training"],
        "validation": result.metadata["metrics"]["validation"],
        "thresholds": result.metadata["decision"]["thresholds"],
        "config": result.metadata["config"],
        "tuning": result.metadata.get("tuning"),
        "test": scores,
    }


def row(r: dict[str, Any]) -> list[str]:
    """The table row of one corpus."""
    d, p = r["test"]["document"], r["test"]["paragraph"]
    val = r["validation"].get("document", {}).get("micro", {}).get("f1", float("nan"))
    return [
        r["corpus"],
        f"{val:.4f}",
        f"{d['micro']['f1']:.4f}",
        f"{d['macro']['f1']:.4f}",
        f"{d['p@1']:.4f}",
        f"{p['micro']['f1']:.4f}",
        f"{p['macro']['f1']:.4f}",
        f"{p['p@1']:.4f}",
        f"{r['train_s']:.1f}",
        f"{r['eval_s']:.1f}",
        f"{r['model_mb']:.1f}",
    ]


def main() -> None:
    parser = arguments("corpora", __doc__, corpora=CORPORA, sets="a TrainingConfig override")
    parser.add_argument(
        "--tune", action="store_true", help="run `tagger tune` (validation split) before training"
    )
    parser.add_argument(
        "--models", type=Path, help="keep the trained models in this folder (default: none kept)"
    )
    args = parser.parse_args()
    cfg = library.config(args.sets)
    report = Report(
        "corpora", args.out, config=cfg.to_dict(), jobs=args.jobs, python=platform.python_version()
    )
    results = report.data["results"] = []
    with tempfile.TemporaryDirectory(prefix="tagger-bench-") as tmp:
        models = args.models or Path(tmp)
        for corpus in args.corpora:
            results.append(run_corpus(args.data, corpus, cfg, args.jobs, models, args.tune))
            log(f"done {corpus}: {row(results[-1])}")
    report.show(markdown_table(COLUMNS, [row(r) for r in results]) + "\n\n" + decision_rule(cfg))
    print(f"\nwrote {report.write()}")


def decision_rule(cfg: Any) -> str:
    """The configuration's decision rule in a sentence, for the note under the table."""
    cfg = cfg.resolved()
    tuned = (
        f"the out-of-fold scores of {cfg.cv_folds} document folds of train/"
        if cfg.cv_folds >= 2
        else "a validation split of train/"
    )
    scores = (
        "the second level's" if cfg.stacking else f"aggregated paragraph scores ({cfg.aggregation})"
    )
    own = (
        f"; labels on < {cfg.rare_label_cuts} documents: their own cuts, shrunk by "
        f"n / (n + {cfg.cut_shrinkage:g})"
        if cfg.rare_label_cuts and cfg.cv_folds >= 2
        else ""
    )
    return (
        f"decision rule: labels scoring >= one threshold tuned on {tuned} (micro-F1){own}, "
        f"at most {cfg.max_labels}, at least {cfg.min_labels}; document scores: {scores}; "
        "P@1 = hits in top 1."
    )


if __name__ == "__main__":
    main()
