"""Ablation: train and evaluate variants of the default configuration on each corpus.

    .venv/bin/python bench/ablation.py [--corpora reuters21578 tiku fudan] [--jobs 2]
                                       [--variant NAME:KEY=VALUE,KEY=VALUE ...]

Each variant changes one or two settings of the defaults; the table shows the validation
estimate (what the choice would be made on) and the test scores (what it gives), so every
default can be traced to a measurement. Results also go to bench/out/ablation-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import run_corpus  # noqa: E402

from classifier.config import TrainingConfig  # noqa: E402
from training.cli import _parse_set  # noqa: E402

VARIANTS = {
    "default": "",
    "min paragraph 30 chars": "min_paragraph_chars=30",
    "min paragraph 100 chars": "min_paragraph_chars=100",
    "max paragraph 1000 chars": "max_paragraph_chars=1000",
    "word bigrams, C=2": "ngram_max=2,C=2.0",
    "per-label thresholds": "label_thresholds=true",
    "score whole documents": "aggregation=whole",
    "whole documents as extra examples": "train_on_documents=true",
    "no refit on all of train": "refit_on_all=false",
    "keep rare labels": "rare_labels=keep",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--corpora", nargs="+", default=["reuters21578", "tiku", "fudan"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[], help="NAME:K=V,K=V")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    variants = dict(v.split(":", 1) for v in args.variant) if args.variant else VARIANTS
    rows = []
    with tempfile.TemporaryDirectory(prefix="tagger-ablation-") as tmp:
        for name, changes in variants.items():
            cfg = TrainingConfig().replace(**_parse_set([c for c in changes.split(",") if c]))
            for corpus in args.corpora:
                r = run_corpus(args.data, corpus, cfg, args.jobs, Path(tmp), search=False)
                doc = r["test"]["document"]
                rows.append(
                    {
                        "variant": name,
                        "changes": changes,
                        "corpus": corpus,
                        "val": r["validation"]["document"]["micro"]["f1"],
                        "f1": doc["micro"]["f1"],
                        "macro": doc["macro"]["f1"],
                        "p1": doc["p@1"],
                    }
                )
                print(f"done {name} / {corpus}: {rows[-1]}", file=sys.stderr, flush=True)
    print("| variant | --set | corpus | val doc µF1 | doc µF1 | doc macro-F1 | doc P@1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | `{r['changes'] or '-'}` | {r['corpus']} | {r['val']:.4f} | "
            f"{r['f1']:.4f} | {r['macro']:.4f} | {r['p1']:.4f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ablation-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(rows, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
