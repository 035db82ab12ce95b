"""Train tagger on each corpus's train/ split, evaluate on its test/ split, print one table.

    .venv/bin/python bench/corpora.py [--data ../shared/data] [--corpora fudan tiku reuters21578]
                                      [--jobs 2] [--set KEY=VALUE ...] [--tune] [--out bench/out]

Everything runs end to end from the raw corpus files: tagger's own paragraph splitting and
segmentation, thresholds (and with --tune the hyperparameters) chosen on a validation split
of train/ only; train time includes tuning. Results go to
``OUT/corpora-<timestamp>.json`` as well as to the screen.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier.config import TrainingConfig  # noqa: E402
from classifier.persistence import MODEL_FILE, load_model  # noqa: E402
from training.cli import _parse_set  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.train import train, tune_and_train  # noqa: E402

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


def run_corpus(
    data: Path, corpus: str, cfg: TrainingConfig, jobs: int, models: Path, search: bool
) -> dict:
    started = time.perf_counter()
    fit = tune_and_train if search else train
    result = fit([data / corpus / "train"], models, name=corpus, config=cfg, jobs=jobs)
    train_s = time.perf_counter() - started
    loaded = load_model(models, corpus)
    started = time.perf_counter()
    scores = evaluate(loaded, [data / corpus / "test"], jobs=jobs)
    eval_s = time.perf_counter() - started
    for level in ("paragraph", "document"):
        scores[level].pop("per_label")
    return {
        "corpus": corpus,
        "train_s": train_s,
        "eval_s": eval_s,
        "model_mb": (result.folder / MODEL_FILE).stat().st_size / 1e6,
        "training": result.metadata["training"],
        "validation": result.metadata["metrics"]["validation"],
        "thresholds": result.metadata["decision"]["thresholds"],
        "config": result.metadata["config"],
        "tuning": result.metadata.get("tuning"),
        "test": scores,
    }


def row(r: dict) -> list[str]:
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--corpora", nargs="+", default=["reuters21578", "tiku", "fudan"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument(
        "--tune", action="store_true", help="run `tagger tune` (validation split) before training"
    )
    args = parser.parse_args()
    cfg = TrainingConfig().replace(**_parse_set(args.overrides))
    results = []
    with tempfile.TemporaryDirectory(prefix="tagger-bench-") as tmp:
        for corpus in args.corpora:
            results.append(run_corpus(args.data, corpus, cfg, args.jobs, Path(tmp), args.tune))
            print(f"done {corpus}: {row(results[-1])}", file=sys.stderr, flush=True)
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in results:
        print("| " + " | ".join(row(r)) + " |")
    print(
        "\ndecision rule: labels with score >= threshold tuned on a validation split of train/ "
        "(micro-F1), at most 10, at least 1; document scores aggregate paragraph scores "
        f"({cfg.aggregation}); P@1 = hits in top 1."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = args.out / f"corpora-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "config": cfg.to_dict(),
                "jobs": args.jobs,
                "python": platform.python_version(),
                "results": results,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
