#!/usr/bin/env python3
"""LibMultiLabel's linear methods as a tool of the shared anchor benchmark harness.

Implements the harness's generic tool protocol (../shared/bench/anchors/README.md) with the
real `libmultilabel` package (0.10.0, `libmultilabel.linear`), one script for all methods:

    tool_libmultilabel.py train   PREP_DIR MODEL_DIR [--jobs N] [--method M] [--examples doc|par]
                                  [--solver 1] [--eps 0.0001] [--C 1] [--bias 1] [--threads 1]
                                  [--min-df 2] [--seed 0]
    tool_libmultilabel.py predict PREP_DIR MODEL_DIR SCORES_DIR [--topk 50] [--name NAME]

Methods (--method): 1vsrest, thresholding, cost_sensitive, cost_sensitive_micro
(linear.train_<method>). Without --method it is read from the tool name, which the harness
makes the basename of MODEL_DIR: lml_<method> (a trailing _par means --examples par), so
one file serves TOOLS="lml_1vsrest lml_thresholding lml_cost_sensitive lml_cost_sensitive_micro"
(TOOL_FILE_<name> / TOOL_PY_<name>, see bench/anchors.sh).

train: examples are whole documents by default (the paragraphs of each harness "doc" of
train.jsonl joined in pid order; the harness gives every paragraph its document's labels,
which is checked), or the harness paragraphs with --examples par. Features: LibMultiLabel's
Preprocessor (scikit-learn TfidfVectorizer) over the pre-segmented whitespace tokens,
lowercased, sublinear tf, min_df 2, as the scikit-learn baseline of the harness; label
columns = the harness label ids seen in training. LIBLINEAR options
"-s 1 -e 0.0001 -c 1 -B 1 -m 1". Threads: train_1vsrest trains labels in parallel with one
thread per physical core (its own choice: it strips -m and has no setting, so --jobs is not
used); the other methods train one label after another, each binary problem with LIBLINEAR's
-m threads (--threads, default 1; LibMultiLabel's own default is -m <physical cores>, which on
a 2-core machine shared with other work made each reuters21578 problem 3-8x slower in wall
time and 6-8x in CPU time than -m 1). The cross-validation splits of
thresholding / cost_sensitive use NumPy's global RNG: seeded with --seed. Saved with
linear.save_pipeline.

predict: decision values of linear.predict_values (thresholding's per-label thresholds are
part of them: its rule, like every method's, is "decision value > 0"); the harness gets
sigmoid(decision) in (0, 1), top-K per paragraph, so its evaluator can tune its threshold
rule as for every tool (sigmoid(d) >= 0.5 <=> d >= 0). Timings: test_predict_s = all test
paragraphs in one process after loading (TF-IDF + predict_values + top-K, batches of
BATCH rows), single_p50_ms = median over the first 100 test paragraphs scored one at a
time, single-threaded (and single_p50_ms_row_major: the same with the weight matrix made
row-major once, which LibMultiLabel does not do; see predict). Beside the harness's scores,
each method's own decision rules are scored with the harness's metric functions
(common.f1_scores, ranking_metrics, decide, tune_threshold) and written to
SCORES_DIR/<name>.predict.json under "own_rules":
  doc_dec>0, doc_dec>0_min1  whole test documents (paragraphs joined, as LibMultiLabel is
                             used and as issue 11 measured): labels with decision > 0,
                             and the same with at least one label (the top one);
  doc_tuned                  the harness's rule (threshold tuned on the val documents for
                             micro-F1, MIN_LABELS [1] / MAX_LABELS [10] from the
                             environment) on whole-document scores instead of the mean
                             of paragraph scores;
  par_dec>0, par_dec>0_min1  the same rules on the test paragraphs.
Whole-document score matrices are kept as SCORES_DIR/<name>.wholedoc_{val,test}.npz.

Like every harness tool, the model sees only train.jsonl: the harness's val documents (10 %
of train/) are held out, which costs the long tail: on reuters21578, thresholding trained
on all of train/ reaches a document macro-F1 of 0.6365 (decision > 0) against 0.6148 in the
harness. Its cross-validation folds move results too: seeds 0, 1, 2 gave document µF1
0.8839 / 0.8893 / 0.8842 and macro-F1 0.6365 / 0.6269 / 0.6038 (all of train/, reuters).

Runs under its own virtualenv (libmultilabel 0.10.0 and scipy < 1.14: train_thresholding's
np.sum(y, 2) on a sparse label matrix raises "axis out of range" with scipy 1.14 - 1.17).
The harness directory is ANCHORS_DIR (default ../shared/bench/anchors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TQDM_MININTERVAL", "10")  # LibMultiLabel's progress bars go to the log

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.special import expit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS_DIR = os.environ.get("ANCHORS_DIR", os.path.join(ROOT, "..", "shared", "bench", "anchors"))
sys.path.insert(0, ANCHORS_DIR)

from common import (  # noqa: E402
    decide,
    f1_scores,
    ranking_metrics,
    read_jsonl,
    save_scores,
    topk_sparse,
    tune_threshold,
)

METHODS = ("1vsrest", "thresholding", "cost_sensitive", "cost_sensitive_micro")
META_FILE = "lml_meta.json"
PIPELINE_FILE = "linear_pipeline.pickle"  # the name linear.save_pipeline writes
BATCH = 5000


def method_from_name(name: str) -> tuple[str | None, str | None]:
    """lml_<method>[_par] -> (method, examples); (None, None) if the name is not of that form."""
    if not name.startswith("lml_"):
        return None, None
    rest, examples = name[4:], "doc"
    if rest.endswith("_par"):
        rest, examples = rest[:-4], "par"
    return (rest, examples) if rest in METHODS else (None, None)


def group_documents(
    rows: list[dict], doc_order: list[str] | None = None
) -> tuple[list[str], list[str], list[list[int]]]:
    """(doc ids, whole-document texts, labels) from harness paragraph rows: the paragraphs of a
    doc joined in pid order. doc_order (docs.json) fixes the order and includes documents
    without paragraphs (empty text)."""
    paras: dict[str, list[tuple[int, str]]] = {}
    labels: dict[str, list[int]] = {}
    for r in rows:
        d = r["doc"]
        paras.setdefault(d, []).append((r["pid"], r["text"]))
        if d in labels and sorted(labels[d]) != sorted(r["labels"]):
            sys.exit(f"document {d}: paragraphs with different labels - not the harness's layout")
        labels.setdefault(d, list(r["labels"]))
    ids = doc_order if doc_order is not None else list(paras)
    texts = [" ".join(t for _, t in sorted(paras.get(d, []))) for d in ids]
    return ids, texts, [labels.get(d, []) for d in ids]


def liblinear_options(a, method: str) -> str:
    opts = f"-s {a.solver} -e {a.eps:g} -c {a.C:g} -B {a.bias:g}"
    if method != "1vsrest":  # train_1vsrest strips -m and uses one thread per physical core
        opts += f" -m {max(1, a.threads)}"
    return opts


def train(a):
    import libmultilabel.linear as linear

    name = os.path.basename(os.path.normpath(a.model))
    nm, ne = method_from_name(name)
    method, examples = a.method or nm, a.examples or ne or "doc"
    if method not in METHODS:
        sys.exit(
            f"--method must be one of {', '.join(METHODS)} "
            f"(or a tool name lml_<method>); got {method!r}"
        )
    n_train_labels = json.load(open(os.path.join(a.prep, "labels.json")))["n_train_labels"]
    rows = read_jsonl(os.path.join(a.prep, "train.jsonl"))
    if examples == "doc":
        _, texts, labels = group_documents(rows)
    else:
        texts, labels = [r["text"] for r in rows], [r["labels"] for r in rows]
    if any(j >= n_train_labels for ls in labels for j in ls):
        sys.exit("train.jsonl has label ids >= n_train_labels of labels.json")

    t0 = time.perf_counter()
    pre = linear.Preprocessor(
        tfidf_params={
            "tokenizer": str.split,
            "token_pattern": None,
            "lowercase": True,
            "sublinear_tf": True,
            "min_df": a.min_df,
        }
    )
    data = pre.fit_transform(
        {
            "data_format": "txt",
            "classes": list(range(n_train_labels)),
            "train": {"x": texts, "y": labels},
        }
    )
    X, Y = data["train"]["x"], data["train"]["y"]
    t1 = time.perf_counter()
    np.random.seed(a.seed)
    options = liblinear_options(a, method)
    model = getattr(linear, f"train_{method}")(Y, X, options=options, verbose=True)
    t2 = time.perf_counter()
    linear.save_pipeline(a.model, pre, model)
    meta = {
        "method": method,
        "examples": examples,
        "liblinear_options": options,
        "seed": a.seed,
        "min_df": a.min_df,
        "n_train": len(texts),
        "n_features": X.shape[1],
        "n_labels": Y.shape[1],
        "libmultilabel": _version("libmultilabel"),
        "scipy": _version("scipy"),
        "vectorize_s": round(t1 - t0, 3),
        "fit_s": round(t2 - t1, 3),
    }
    with open(os.path.join(a.model, META_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


def _version(dist: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def own_rule(
    D: np.ndarray, cols: np.ndarray, gold: list[list[int]], at_least_one: bool, ranked
) -> dict:
    """Decision value > 0 (optionally at least the top label) -> harness metrics."""
    pred = []
    for row in D:
        idx = np.flatnonzero(row > 0)
        if at_least_one and idx.size == 0 and row.size:
            idx = np.array([int(np.argmax(row))])
        pred.append(cols[idx].tolist())
    res = f1_scores(pred, gold)
    res.update(ranking_metrics(ranked, gold))
    res["avg_pred_labels"] = sum(len(p) for p in pred) / max(1, len(pred))
    res["no_label_share"] = sum(1 for row in D if not (row > 0).any()) / max(1, len(D))
    return res


def predict(a):
    import libmultilabel.linear as linear

    name = a.name or os.path.basename(os.path.normpath(a.model))
    n_labels = len(json.load(open(os.path.join(a.prep, "labels.json")))["labels"])
    meta = json.load(open(os.path.join(a.model, META_FILE)))
    t0 = time.perf_counter()
    pre, model = linear.load_pipeline(os.path.join(a.model, PIPELINE_FILE))
    load_s = time.perf_counter() - t0
    vec = pre.vectorizer
    cols = np.asarray(pre.label_mapping, dtype=np.int64)

    def decisions(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(cols)))
        return np.vstack(
            [
                linear.predict_values(model, vec.transform(texts[i : i + BATCH]))
                for i in range(0, len(texts), BATCH)
            ]
        )

    def to_scores(D: np.ndarray) -> sp.csr_matrix:
        full = np.zeros((D.shape[0], n_labels), dtype=np.float32)
        full[:, cols] = expit(D)
        return topk_sparse(full, a.topk)

    stats = {
        "load_s": round(load_s, 4),
        **{k: meta[k] for k in ("method", "examples", "liblinear_options")},
        "train_vectorize_s": meta["vectorize_s"],
        "train_fit_s": meta["fit_s"],
        "n_train_examples": meta["n_train"],
        "n_features": meta["n_features"],
    }
    rows, D_par, S_par = {}, {}, {}
    for split in ("val", "test"):
        rows[split] = read_jsonl(os.path.join(a.prep, f"{split}.jsonl"))
        texts = [r["text"] for r in rows[split]]
        t0 = time.perf_counter()
        D = decisions(texts)
        S = to_scores(D)
        dt = time.perf_counter() - t0
        save_scores(os.path.join(a.scores, f"{name}.{split}.npz"), S)
        D_par[split], S_par[split] = D, S
        stats[f"{split}_n"] = len(texts)
        stats[f"{split}_predict_s"] = round(dt, 4)
        if split == "test" and texts:
            lat = []
            for t in texts[:100]:
                s = time.perf_counter()
                to_scores(linear.predict_values(model, vec.transform([t])))
                lat.append(time.perf_counter() - s)
            stats["single_p50_ms"] = round(1000 * float(np.median(lat)), 3)
            # FlatModel keeps its weights column-major (np.asmatrix of an order="F" array), and
            # sparse @ dense copies them to row-major on every call: the same 100 texts with
            # the weights made row-major once, for reference (not what LibMultiLabel does)
            shipped = model.weights
            model.weights = np.asmatrix(np.ascontiguousarray(shipped))
            lat = []
            for t in texts[:100]:
                s = time.perf_counter()
                to_scores(linear.predict_values(model, vec.transform([t])))
                lat.append(time.perf_counter() - s)
            stats["single_p50_ms_row_major"] = round(1000 * float(np.median(lat)), 3)
            model.weights = shipped

    # each method's own decision rules, with the harness's metric functions
    docs = json.load(open(os.path.join(a.prep, "docs.json")))
    min_labels = int(os.environ.get("MIN_LABELS", 1))
    max_labels = int(os.environ.get("MAX_LABELS", 10))
    D_doc, S_doc, gold_doc = {}, {}, {}
    for split in ("val", "test"):
        ids = [d["id"] for d in docs[split]]
        gold_doc[split] = [d["labels"] for d in docs[split]]
        _, texts, _ = group_documents(rows[split], ids)
        t0 = time.perf_counter()
        D_doc[split] = decisions(texts)
        S_doc[split] = to_scores(D_doc[split])
        stats[f"wholedoc_{split}_predict_s"] = round(time.perf_counter() - t0, 4)
        save_scores(os.path.join(a.scores, f"{name}.wholedoc_{split}.npz"), S_doc[split])
    gold_par = [r["labels"] for r in rows["test"]]
    own = {
        "doc_dec>0": own_rule(D_doc["test"], cols, gold_doc["test"], False, S_doc["test"]),
        "doc_dec>0_min1": own_rule(D_doc["test"], cols, gold_doc["test"], True, S_doc["test"]),
        "par_dec>0": own_rule(D_par["test"], cols, gold_par, False, S_par["test"]),
        "par_dec>0_min1": own_rule(D_par["test"], cols, gold_par, True, S_par["test"]),
    }
    if gold_doc["val"]:
        t, val_f1 = tune_threshold(S_doc["val"], gold_doc["val"], min_labels, max_labels)
        pred = decide(S_doc["test"], t, min_labels, max_labels)
        res = f1_scores(pred, gold_doc["test"])
        res.update(ranking_metrics(S_doc["test"], gold_doc["test"]))
        res.update(
            {
                "threshold": "top-min_labels" if t == float("inf") else round(t, 5),
                "val_micro_f1": val_f1,
                "min_labels": min_labels,
                "max_labels": max_labels,
                "avg_pred_labels": sum(len(p) for p in pred) / max(1, len(pred)),
            }
        )
        own["doc_tuned"] = res
    stats["own_rules"] = own
    with open(os.path.join(a.scores, f"{name}.predict.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps({k: v for k, v in stats.items() if k != "own_rules"}))
    for rule, r in own.items():
        print(
            f"{rule:15s} µF1 {r['micro_f1']:.4f}  macro-F1 {r['macro_f1']:.4f}  P@1 {r['p@1']:.4f}"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("prep")
    t.add_argument("model")
    t.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="accepted for the protocol; LibMultiLabel has no such setting (see --threads)",
    )
    t.add_argument(
        "--threads",
        type=int,
        default=1,
        help="LIBLINEAR -m for the methods other than 1vsrest (default 1, see the docstring)",
    )
    t.add_argument("--method", choices=METHODS, default=None)
    t.add_argument(
        "--examples",
        choices=("doc", "par"),
        default=None,
        help="whole documents (default) or the harness paragraphs",
    )
    t.add_argument("--solver", type=int, default=1, help="LIBLINEAR -s")
    t.add_argument("--eps", type=float, default=0.0001, help="LIBLINEAR -e")
    t.add_argument("--C", type=float, default=1.0, help="LIBLINEAR -c")
    t.add_argument("--bias", type=float, default=1.0, help="LIBLINEAR -B")
    t.add_argument("--min-df", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("predict")
    p.add_argument("prep")
    p.add_argument("model")
    p.add_argument("scores")
    p.add_argument(
        "--name", default=None, help="default: basename of MODEL_DIR (the harness's tool name)"
    )
    p.add_argument("--topk", type=int, default=50)
    a = ap.parse_args()
    train(a) if a.cmd == "train" else predict(a)


if __name__ == "__main__":
    main()
