"""Per-label fitting at scale: a synthetic corpus (Zipf tag frequencies), fitted in one local
thread and on local Dask clusters of 1 and 2 workers; wall time, CPU-s per label per 100k
paragraphs, peak RSS of the client and the workers, and a check that every run gives the
same weights.

Only the fitting step is timed (the step ``--cluster`` moves to the workers): the corpus is
generated as already-segmented text and featurised once, outside the timings. Cluster start
and the workers' first imports (one tiny fit) are left out of the fit timings; the start is
reported apart. Small sizes by default (``--paragraphs``, ``--labels``): on the shared
2-core machine two workers compete with everything else running, so read the ratios, not
the absolute times.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from bench import library
from bench.harness import arguments, logger

log = logger("scale")


def synthetic(n_paragraphs: int, n_labels: int, seed: int = 0) -> tuple[list[str], list[tuple]]:
    """Paragraphs of space-separated words and the tags of their document.

    Tags follow a Zipf law (label k drawn with weight 1/(k+1)); a document has 1-4 tags and
    1-4 paragraphs; a paragraph has a lognormal number of words (median 60, like a few
    hundred characters), a third of them from its tags' own 40 words, the rest from a
    20,000-word Zipf vocabulary shared by all.
    """
    rng = np.random.default_rng(seed)
    vocab = 20_000
    label_p = 1.0 / np.arange(1, n_labels + 1)
    label_p /= label_p.sum()
    word_p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    word_p /= word_p.sum()
    own = rng.integers(0, vocab, size=(n_labels, 40))
    texts: list[str] = []
    tags: list[tuple] = []
    while len(texts) < n_paragraphs:
        k = min(4, 1 + rng.poisson(0.8))
        doc_labels = rng.choice(n_labels, size=k, replace=False, p=label_p)
        for _ in range(rng.integers(1, 5)):
            n = max(5, int(rng.lognormal(np.log(60), 0.6)))
            n_own = n // 3
            words = list(rng.choice(vocab, size=n - n_own, p=word_p))
            words += list(own[rng.choice(doc_labels, size=n_own)][:, rng.integers(0, 40)])
            texts.append(" ".join(f"w{w}" for w in words))
            tags.append(tuple(f"L{j}" for j in doc_labels))
    return texts[:n_paragraphs], tags[:n_paragraphs]


def cpu_of(usage: dict[str, Any]) -> float:
    return sum(w["cpu_s"] for w in usage["workers"].values())


def measure(n_paragraphs: int, n_labels: int, workers: list[int]) -> list[dict[str, Any]]:
    texts, tags = synthetic(n_paragraphs, n_labels)
    labels = sorted({t for ts in tags for t in ts}, key=lambda t: int(t[1:]))
    cfg = library.config(min_df=2)
    x = library.fitted_features(cfg, texts)
    y = library.labels_of(tags, labels)
    per = 100_000 / n_paragraphs / len(labels)
    log(f"{n_paragraphs} paragraphs, {len(labels)} labels, {x.shape[1]} features")
    rows = []
    c0, t0 = time.process_time(), time.perf_counter()
    local = library.fit_labels(x, y, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows.append(
        {"paragraphs": n_paragraphs, "labels": len(labels), "run": "1 thread, no cluster",
         "fit_wall_s": round(wall, 2), "cpu_s_per_label_per_100k": round(cpu * per, 3),
         "max_weight_difference": 0.0}
    )  # fmt: skip
    for n in workers:
        t0 = time.perf_counter()
        with library.connect(f"local:{n}") as client:
            started = time.perf_counter() - t0
            library.fit_labels(x[:500], y[:500, :n], cfg, client)  # imports on every worker
            before = cpu_of(library.cluster_usage(client))
            t0 = time.perf_counter()
            remote = library.fit_labels(x, y, cfg, client)
            wall = time.perf_counter() - t0
            usage = library.cluster_usage(client)
        diff = float(abs(local.coef - remote.coef).max()) if local.coef.nnz else 0.0
        rows.append(
            {"paragraphs": n_paragraphs, "labels": len(labels), "run": f"local:{n}",
             "cluster_start_s": round(started, 2), "fit_wall_s": round(wall, 2),
             "cpu_s_per_label_per_100k": round((cpu_of(usage) - before) * per, 3),
             "peak_rss_mb": {"client": usage["client"]["peak_rss_mb"],
                             "workers": [w["peak_rss_mb"] for w in usage["workers"].values()]},
             "max_weight_difference": diff,
             "same_intercepts": bool(np.array_equal(local.intercept, remote.intercept))}
        )  # fmt: skip
        log(json.dumps(rows[-1]))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| paragraphs | labels | run | fit wall s | CPU-s / label / 100k par. "
        "| peak RSS client / workers MB | same model |\n|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for r in rows:
        rss = r.get("peak_rss_mb")
        shown = (
            f"{rss['client']:.0f} / {', '.join(f'{w:.0f}' for w in rss['workers'])}" if rss else "–"
        )
        same = "reference" if "same_intercepts" not in r else (
            "yes" if r["same_intercepts"] and r["max_weight_difference"] <= 1e-6 else "NO"
        )  # fmt: skip
        body += (
            f"| {r['paragraphs']:,} | {r['labels']} | {r['run']} | {r['fit_wall_s']} "
            f"| {r['cpu_s_per_label_per_100k']} | {shown} | {same} |\n"
        )
    return head + body


def main() -> None:
    parser = arguments("scale", __doc__, data=False)
    parser.add_argument("--paragraphs", type=int, nargs="+", default=[5_000, 20_000])
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = [r for n in args.paragraphs for r in measure(n, args.labels, args.workers)]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"versions": library.versions(), "rows": rows}
    (args.out / "scale.json").write_text(json.dumps(report, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
