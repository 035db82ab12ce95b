"""Ablation: fit variants of the default configuration on each corpus, score them on test/.

    python -m bench.ablation [--corpora reuters21578 tiku fudan] [--jobs 2]
                             [--variant "NAME:KEY=VALUE,KEY=VALUE" ...] [--holdout 0.2]

Each variant changes one or two settings of the defaults. A corpus is read and segmented
once per paragraph setting and shared by the variants that use it; each variant is then
fitted exactly as `tagger train` fits (validation split, calibration, thresholds, refit on
all of train/) and scored on test/ with the model's own decision rule. The table shows the
validation estimate a choice would be made on and the test scores it gives, so every default
can be traced to a measurement. Results also go to bench/out/ablation-<time>.json.

With ``--holdout F``, test/ is not read: a share F of train/'s documents (by a hash of their
id, salted apart from tagger's own folds and validation split) is held out and scored
instead, the variants fitting on the rest. That is the run a default is chosen on when the
variants cannot be told apart by tagger's own out-of-fold estimate (a refit, say).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import library
from bench.corpora import CORPORA
from bench.harness import Report, arguments, logger, markdown_table, timed
from classifier.dataset import id_hashes

VARIANTS = {
    "default": "",
    # issue 11: each choice of the stacked default switched off alone, then all together
    "no second level (folds, mean of paragraphs)": "stacking=false",
    "one validation split, no second level": "cv_folds=0,stacking=false,label_names=false",
    "drop rare labels": "rare_labels=drop",
    "liblinear tol 1e-4": "tol=0.0001",
    "5 folds": "cv_folds=5",
    "no own cuts for rare labels": "rare_label_cuts=0",
    "own cuts unshrunk": "cut_shrinkage=0",
    "own cuts for labels on < 20 documents, unshrunk": "rare_label_cuts=20,cut_shrinkage=0",
    "previous defaults": (
        "cv_folds=0,stacking=false,rare_labels=drop,tol=0.0001,label_names=false"
    ),
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
    "10 nearest documents blended": "neighbours=10,cv_folds=0,stacking=false,label_names=false",
    "per-label thresholds": "label_thresholds=true",
    "max of paragraph scores": "stacking=false,aggregation=max",
    "length-weighted mean": "stacking=false,aggregation=weighted",
    "score whole documents": "stacking=false,aggregation=whole",
    "whole documents as extra examples": "train_on_documents=true",
    "min paragraph 30 chars": "min_paragraph_chars=30",
    "max paragraph 1000 chars": "max_paragraph_chars=1000",
    "no refit: fold models averaged": "refit_on_all=false",
}
COLUMNS = ["variant", "--set", "corpus", "val doc µF1", "val doc macro-F1", "doc µF1"]
COLUMNS += ["doc macro-F1", "doc P@1"]
COLUMNS += ["weights", "fit s", "fit CPU s"]
log = logger("ablation")


class Corpora:
    """Prepared train/test splits, made once per (corpus, paragraph settings)."""

    def __init__(self, data: Path, jobs: int, holdout: float = 0.0) -> None:
        self.data, self.jobs, self.holdout = data, jobs, holdout
        self.cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def get(self, corpus: str, cfg: Any) -> tuple[Any, Any]:
        """The prepared train/ and test/ splits of ``corpus`` under ``cfg`` (with a holdout:
        the rest of train/ and its held-out documents)."""
        key = (corpus, *library.preparation(cfg))
        if key not in self.cache:
            self.cache.clear()  # one corpus in memory at a time: variants run corpus by corpus
            if self.holdout:
                whole = library.prepare(self.data / corpus / "train", cfg, self.jobs)
                self.cache[key] = held_out(whole, self.holdout)
            else:
                self.cache[key] = tuple(  # type: ignore[assignment]
                    library.prepare(self.data / corpus / split, cfg, self.jobs)
                    for split in ("train", "test")
                )
        return self.cache[key]


def held_out(data: Any, fraction: float) -> tuple[Any, Any]:
    """``data`` split by document into (the rest, a held-out share ``fraction``)."""
    held = (id_hashes(data.doc_ids, "bench-holdout") / 2**32 < fraction).tolist()
    return (
        data.subset([i for i, h in enumerate(held) if not h]),
        data.subset([i for i, h in enumerate(held) if h]),
    )


def run_variant(train: Any, test: Any, cfg: Any, jobs: int) -> dict[str, Any]:
    """Fit one variant on ``train`` and score it on ``test``."""
    fit_s, fit_cpu_s, (model, report) = timed(lambda: library.fit(train, cfg, jobs))
    scores = library.score_prepared_corpus(model, test)
    return {
        "val": report.validation["document"]["micro"]["f1"],
        "val_macro": report.validation["document"]["macro"]["f1"],
        "f1": scores["document"]["micro"]["f1"],
        "macro": scores["document"]["macro"]["f1"],
        "p1": scores["document"]["p@1"],
        "par_f1": scores["paragraph"]["micro"]["f1"],
        "weights": report.n_weights,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "neighbours": report.neighbours,
    }


def cells(r: dict[str, Any]) -> list[str]:
    """The table row of one variant on one corpus."""
    return [
        r["variant"],
        f"`{r['changes'] or '-'}`",
        r["corpus"],
        f"{r['val']:.4f}",
        f"{r['val_macro']:.4f}",
        f"{r['f1']:.4f}",
        f"{r['macro']:.4f}",
        f"{r['p1']:.4f}",
        f"{r['weights']:,}",
        f"{r['fit_s']:.0f}",
        f"{r['fit_cpu_s']:.0f}",
    ]


def main() -> None:
    parser = arguments("ablation", __doc__, corpora=CORPORA)
    parser.add_argument("--variant", action="append", default=[], help="NAME:K=V,K=V")
    parser.add_argument(
        "--holdout", type=float, default=0.0, help="score a held-out share of train/, not test/"
    )
    args = parser.parse_args()
    if not 0 <= args.holdout < 1:
        parser.error("--holdout is a share of the documents, from 0 to 1")
    variants = dict(v.split(":", 1) for v in args.variant) if args.variant else VARIANTS
    configs = {
        name: library.config([c for c in changes.split(",") if c])
        for name, changes in variants.items()
    }
    report = Report("ablation", args.out, defaults=library.config().to_dict(), holdout=args.holdout)
    rows = report.data["rows"] = []
    corpora = Corpora(args.data, args.jobs, args.holdout)
    for corpus in args.corpora:
        # variants sharing paragraph settings run together, so each split is prepared once
        order = sorted(variants, key=lambda n: library.preparation(configs[n]))
        for name in order:
            train, test = corpora.get(corpus, configs[name])
            r = run_variant(train, test, configs[name], args.jobs)
            rows.append({"variant": name, "changes": variants[name], "corpus": corpus} | r)
            log(f"done {name} / {corpus}: {rows[-1]}")
    names = list(variants)
    ordered = sorted(
        rows, key=lambda r: (args.corpora.index(r["corpus"]), names.index(r["variant"]))
    )
    scored = f"a held-out {args.holdout:.0%} of train/" if args.holdout else "test/"
    print(f"doc columns scored on {scored}; val columns: tagger's own estimate\n")
    report.show(markdown_table(COLUMNS, [cells(r) for r in ordered]))
    print(f"\nwrote {report.write()}")


if __name__ == "__main__":
    main()
