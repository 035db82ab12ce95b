"""Ablation: fit variants of the default configuration on each corpus, score them on test/.

    .venv/bin/python bench/ablation.py [--corpora reuters21578 tiku fudan] [--jobs 2]
                                       [--variant "NAME:KEY=VALUE,KEY=VALUE" ...]

Each variant changes one or two settings of the defaults. A corpus is read and segmented
once per paragraph setting and shared by the variants that use it; each variant is then
fitted exactly as `tagger train` fits (classifier.learn.fit_classifier: validation split,
calibration, thresholds, refit on all of train/) and scored on test/ with the model's own
decision rule. The table shows the validation estimate a choice would be made on and the
test scores it gives, so every default can be traced to a measurement. Results also go to
bench/out/ablation-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier.config import TrainingConfig  # noqa: E402
from classifier.corpus import ReadReport, read_corpus  # noqa: E402
from classifier.learn import PreparedCorpus, fit_classifier, prepare_corpus  # noqa: E402
from classifier.tokenizer import resolve_segmenter  # noqa: E402
from classifier.tune import preparation  # noqa: E402
from training.cli import _parse_set  # noqa: E402
from training.evaluate import evaluate_prepared  # noqa: E402

VARIANTS = {
    "default": "",
    "character 1-2-grams, prune 0.05": "char_ngram_max=2,prune_below=0.05",
    "character 1-2-grams": "char_ngram_max=2",
    "character 1-3-grams, prune 0.05": "char_ngram_max=3,prune_below=0.05",
    "no weight pruning": "prune_below=0",
    "prune |w| <= 0.05": "prune_below=0.05",
    "prune |w| <= 0.1": "prune_below=0.1",
    "word bigrams": "ngram_max=2",
    "C = 0.5": "C=0.5",
    "C = 2": "C=2",
    "raw term frequency": "sublinear_tf=false",
    "balanced class weights": "class_weight=balanced",
    "logistic regression": "learner=logistic",
    "SGD, modified Huber": "learner=sgd",
    "10 nearest documents blended": "neighbours=10",
    "per-label thresholds": "label_thresholds=true",
    "max of paragraph scores": "aggregation=max",
    "length-weighted mean": "aggregation=weighted",
    "score whole documents": "aggregation=whole",
    "whole documents as extra examples": "train_on_documents=true",
    "min paragraph 30 chars": "min_paragraph_chars=30",
    "max paragraph 1000 chars": "max_paragraph_chars=1000",
    "no refit on all of train": "refit_on_all=false",
    "keep rare labels": "rare_labels=keep",
}


class Corpora:
    """Prepared train/test splits, made once per (corpus, paragraph settings)."""

    def __init__(self, data: Path, jobs: int) -> None:
        self.data, self.jobs = data, jobs
        self.cache: dict[tuple, tuple[PreparedCorpus, PreparedCorpus]] = {}

    def get(self, corpus: str, cfg: TrainingConfig) -> tuple[PreparedCorpus, PreparedCorpus]:
        key = (corpus, *preparation(cfg))
        if key not in self.cache:
            self.cache.clear()  # one corpus in memory at a time: variants run corpus by corpus
            seg = resolve_segmenter(cfg.segmenter)
            self.cache[key] = tuple(  # type: ignore[assignment]
                prepare_corpus(
                    read_corpus([self.data / corpus / split], report=ReadReport()),
                    cfg,
                    seg,
                    self.jobs,
                )
                for split in ("train", "test")
            )
        return self.cache[key]


def run_variant(train: PreparedCorpus, test: PreparedCorpus, cfg: TrainingConfig, jobs: int):
    started = time.perf_counter()
    model, report = fit_classifier(train, cfg, resolve_segmenter(cfg.segmenter), jobs)
    fit_s = time.perf_counter() - started
    scores = evaluate_prepared(model, test)
    return {
        "val": report.validation["document"]["micro"]["f1"],
        "f1": scores["document"]["micro"]["f1"],
        "macro": scores["document"]["macro"]["f1"],
        "p1": scores["document"]["p@1"],
        "par_f1": scores["paragraph"]["micro"]["f1"],
        "weights": report.n_weights,
        "fit_s": fit_s,
        "neighbours": report.neighbours,
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
    configs = {
        name: TrainingConfig().replace(**_parse_set([c for c in changes.split(",") if c]))
        for name, changes in variants.items()
    }
    corpora = Corpora(args.data, args.jobs)
    rows = []
    for corpus in args.corpora:
        # variants sharing paragraph settings run together, so each split is prepared once
        order = sorted(variants, key=lambda n: preparation(configs[n]))
        for name in order:
            train, test = corpora.get(corpus, configs[name])
            r = run_variant(train, test, configs[name], args.jobs)
            rows.append({"variant": name, "changes": variants[name], "corpus": corpus} | r)
            print(f"done {name} / {corpus}: {rows[-1]}", file=sys.stderr, flush=True)
    columns = ["variant", "--set", "corpus", "val doc µF1", "doc µF1", "doc macro-F1", "doc P@1"]
    columns += ["weights", "fit s"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    names = list(variants)
    for r in sorted(
        rows, key=lambda r: (args.corpora.index(r["corpus"]), names.index(r["variant"]))
    ):
        print(
            f"| {r['variant']} | `{r['changes'] or '-'}` | {r['corpus']} | {r['val']:.4f} | "
            f"{r['f1']:.4f} | {r['macro']:.4f} | {r['p1']:.4f} | {r['weights']:,} | "
            f"{r['fit_s']:.0f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ablation-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"defaults": TrainingConfig().to_dict(), "rows": rows}, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
