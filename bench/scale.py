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

``--serve-labels N`` runs the serving section instead (issue 14.5): a synthetic corpus of N
labels (``synthetic_documents``), a model trained on it with the shipped defaults, its size
on disk, one paragraph in process (``predict`` and its steps), each ``tagger serve`` worker's
RSS once ready and after ``--serve-requests`` requests, and scores on held-out documents.

``--stage featurise|train|predict`` runs the streaming section instead (issue 14.3-4):
seed-format corpora of ``--documents`` generated documents (``streamed_documents``, written
once under ``--work``), each step in a fresh process: its peak RSS, the workers', the time,
tagging throughput and the model's size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench import library, loadgen
from bench.harness import (
    Report,
    Server,
    arguments,
    latencies,
    logger,
    markdown_table,
    med,
    pct,
    phase,
    rotated,
    timed,
    tree_rss,
    warm,
)
from bench.multimodel import workers_rss_mb
from bench.perf_predict import fresh_load_rss

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


# --- serving a model of thousands of labels (issue 14.5) ------------------------------------
# issue 14.5's budgets: one paragraph in process, the model's files, a served worker's RSS
SERVE_BUDGET = {"paragraph_ms": 1.0, "model_mb": 100.0, "worker_rss_mb": 500.0}
SERVE_SINGLES = 200  # one-paragraph texts timed in process (the validation documents' first)


def synthetic_documents(
    n_docs: int, n_labels: int, seed: int = 0, min_docs: int = 2
) -> list[dict[str, Any]]:
    """Documents of a thesaurus-sized tag set, as JSONL records (``id``, ``text``, ``tags``).

    Tags as in ``synthetic`` (Zipf, 1-4 a document), then every label short of ``min_docs``
    documents is added to random ones until it has them, so that all ``n_labels`` are labels
    of the corpus (a Zipf draw alone leaves most of a 5,000-label tail unseen). The text is
    made after the tags: 1-4 paragraphs on lines of their own, each a lognormal number of
    words (median 60, a few hundred characters), a third of them from its document's tags'
    own 40 words, the rest from a shared Zipf vocabulary of ``max(20,000, 20 * n_labels)``
    words.
    """
    rng = np.random.default_rng(seed)
    vocab = max(20_000, 20 * n_labels)
    label_p = 1.0 / np.arange(1, n_labels + 1)
    label_p /= label_p.sum()
    word_p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    word_p /= word_p.sum()
    own = rng.integers(0, vocab, size=(n_labels, 40))
    doc_tags = [
        set(rng.choice(n_labels, size=min(4, 1 + rng.poisson(0.8)), replace=False, p=label_p))
        for _ in range(n_docs)
    ]
    counts = np.bincount([j for tags in doc_tags for j in tags], minlength=n_labels)
    for j in np.flatnonzero(counts < min_docs):
        for d in rng.choice(n_docs, size=min_docs - counts[j], replace=False):
            doc_tags[d].add(j)
    docs = []
    for d, tags in enumerate(doc_tags):
        labels = np.array(sorted(tags))
        paragraphs = []
        for _ in range(rng.integers(1, 5)):
            n = max(5, int(rng.lognormal(np.log(60), 0.6)))
            n_own = n // 3
            words = list(rng.choice(vocab, size=n - n_own, p=word_p))
            words += list(own[rng.choice(labels, size=n_own)][:, rng.integers(0, 40)])
            rng.shuffle(words)
            paragraphs.append(" ".join(f"w{w}" for w in words))
        docs.append(
            {"id": f"d{d}", "text": "\n".join(paragraphs), "tags": [f"L{j}" for j in labels]}
        )
    return docs


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records one JSON object a line, atomically (a temporary file renamed)."""
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(part, path)


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
    headers = [
        "paragraphs",
        "labels",
        "run",
        "fit wall s",
        "CPU-s / label / 100k par.",
        "peak RSS client / workers MB",
        "same model",
    ]
    body = []
    for r in rows:
        rss = r.get("peak_rss_mb")
        shown = (
            f"{rss['client']:.0f} / {', '.join(f'{w:.0f}' for w in rss['workers'])}" if rss else "–"
        )
        same = "reference" if "same_intercepts" not in r else (
            "yes" if r["same_intercepts"] and r["max_weight_difference"] <= 1e-6 else "NO"
        )  # fmt: skip
        body.append(
            [
                f"{r['paragraphs']:,}",
                str(r["labels"]),
                r["run"],
                str(r["fit_wall_s"]),
                str(r["cpu_s_per_label_per_100k"]),
                shown,
                same,
            ]
        )
    return markdown_table(headers, body)


# --- Streaming and tagging at scale (issue 14.3-4): generated seed-format corpora of growing
# size, each measured step in a fresh process (its peak RSS is its own) ---

WORK = Path(tempfile.gettempdir()) / f"tagger-scale-{os.getuid()}"
FILES_PER_FOLDER = 1000  # a folder is listed at once: keep each small
STAGES = ("featurise", "train", "predict")


def streamed_documents(
    n_docs: int, n_labels: int, seed: int = 0, block: int = 1000
) -> Iterator[tuple[list[str], list[str]]]:
    """Documents as (tags, paragraphs), generated a block at a time (nothing else is held).

    The shape of ``synthetic``'s: Zipf tags (1-4 a document), 1-3 paragraphs of a lognormal
    number of words (median 60: a few hundred characters, so most are not merged into a
    neighbour by the paragraph rule), a third of the words from the document's tags' own 40.
    """
    rng = np.random.default_rng(seed)
    vocab = 20_000
    label_p = 1.0 / np.arange(1, n_labels + 1)
    label_p /= label_p.sum()
    word_p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    word_p /= word_p.sum()
    own = rng.integers(0, vocab, size=(n_labels, 40))
    names = np.array([f"w{w}" for w in range(vocab)])
    for first in range(0, n_docs, block):
        n = min(block, n_docs - first)
        n_tags = np.minimum(4, 1 + rng.poisson(0.8, size=n))
        n_pars = rng.integers(1, 4, size=n)
        lengths = np.maximum(5, rng.lognormal(np.log(60), 0.6, size=int(n_pars.sum()))).astype(int)
        shared = rng.choice(vocab, size=int(lengths.sum()), p=word_p)
        at = pos = 0
        for i in range(n):
            doc_labels = rng.choice(n_labels, size=n_tags[i], replace=False, p=label_p)
            paragraphs = []
            for length in lengths[at : at + n_pars[i]]:
                n_own = length // 3
                words = np.concatenate([
                    shared[pos : pos + length - n_own],
                    own[rng.choice(doc_labels, size=n_own), rng.integers(0, 40, n_own)],
                ])  # fmt: skip
                pos += length
                paragraphs.append(" ".join(names[words].tolist()))
            at += n_pars[i]
            yield [f"L{j}" for j in doc_labels], paragraphs


def seed_corpus(n_docs: int, n_labels: int, work: Path = WORK) -> Path:
    """A folder of ``n_docs`` generated documents in the seed format (``%%%TAG|TAG|``, an empty
    line, the paragraphs a line each), in sub-folders of ``FILES_PER_FOLDER``; made once and
    reused (a ``complete`` marker is written last)."""
    folder = work / f"corpus-{n_labels}-{n_docs}"
    if (folder / "complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    for i, (tags, paragraphs) in enumerate(streamed_documents(n_docs, n_labels)):
        sub = folder / f"{i // FILES_PER_FOLDER:05d}"
        if i % FILES_PER_FOLDER == 0:
            sub.mkdir(parents=True)
        (sub / f"{i:07d}.txt").write_text(
            f"%%%{'|'.join(tags)}|\n\n" + "\n".join(paragraphs) + "\n", encoding="utf-8"
        )
    (folder / "complete").write_text("")
    log(f"wrote {n_docs:,} documents to {folder} in {time.perf_counter() - t0:.0f} s")
    return folder


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 2)


def child_featurise(corpus: Path, mode: str) -> dict[str, Any]:
    """Read, segment and featurise ``corpus`` as ``tagger train`` does: ``chunked`` (the
    prepared paragraphs spooled to disk, terms counted and rows made a chunk at a time) or
    ``whole`` (every prepared text held and fitted at once, as before)."""
    from classifier.corpus import read_corpus
    from classifier.dataset import prepare_corpus
    from classifier.features import fit_features, fit_features_chunked

    cfg = library.config().resolved()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tagger-scale-") as tmp:
        spool = Path(tmp, "spool.jsonl") if mode == "chunked" else None
        data = prepare_corpus(read_corpus([corpus]), cfg.text, spool=spool)
        prepared = time.perf_counter()
        if spool is None:
            _, x = fit_features(data.texts, cfg)
        else:
            _, x = fit_features_chunked(data.paragraph_chunks, cfg)
    return {
        "documents": data.n_documents, "paragraphs": data.n_paragraphs,
        "features": x.shape[1], "matrix_mb": round(
            (x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 2**20, 1),
        "read_segment_s": round(prepared - t0, 1),
        "featurise_s": round(time.perf_counter() - prepared, 1),
    }  # fmt: skip


def child_train(corpus: Path, models: Path, name: str, cluster: str | None) -> dict[str, Any]:
    """``tagger train CORPUS [--cluster …]`` with the default (stacked) configuration."""
    from training.train import train

    t0 = time.perf_counter()
    result = train([corpus], models, name=name, cluster=cluster, jobs=1)
    meta = result.metadata
    workers = meta.get("cluster", {}).get("usage", {}).get("workers", {}).values()
    return {
        "documents": meta["corpus"]["documents_read"], "paragraphs": meta["corpus"]["paragraphs"],
        "labels": len(meta["labels"]), "wall_s": round(time.perf_counter() - t0, 1),
        "seconds": meta["training"]["seconds"],
        "folds_seconds": meta["decision"]["cross_validation"].get("seconds"),
        "folds_peak_rss_mb": meta["decision"]["cross_validation"].get("peak_rss_mb"),
        "model_mb": folder_mb(result.folder),
        "workers_peak_rss_mb": [w["peak_rss_mb"] for w in workers],
        "workers_cpu_s": [w["cpu_s"] for w in workers],
    }  # fmt: skip


def child_predict(corpus: Path, models: Path, name: str, cluster: str | None) -> dict[str, Any]:
    """``tagger predict CORPUS --out DIR [--cluster …]`` into a fresh folder (timed whole:
    the model's load and, with a cluster, its start)."""
    from training.batch import Options, predict_to_folder

    with tempfile.TemporaryDirectory(prefix="tagger-scale-out-") as out:
        t0 = time.perf_counter()
        result = predict_to_folder(
            [str(corpus)], Path(out, "tagged"), models, name, Options(), cluster=cluster
        )
        wall = time.perf_counter() - t0
    workers = result.usage.get("workers", {}).values() if result.usage else []
    return {
        "documents": result.documents, "parts": result.parts, "wall_s": round(wall, 1),
        "documents_per_s": round(result.documents / wall, 1),
        "workers_peak_rss_mb": [w["peak_rss_mb"] for w in workers],
        "workers_cpu_s": [w["cpu_s"] for w in workers],
    }  # fmt: skip


def in_child(stage: str, *args: str) -> dict[str, Any]:
    """Run one measured step in a fresh interpreter; its result, its own peak RSS and CPU."""
    cmd = [sys.executable, "-m", "bench.scale", "--child", stage, *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_child(argv: list[str]) -> None:
    from classifier.resources import usage

    stage, corpus, *rest = argv
    if stage == "featurise":
        row = child_featurise(Path(corpus), rest[0])
    else:
        models, name, cluster = Path(rest[0]), rest[1], (rest[2] if rest[2] != "-" else None)
        fn = child_train if stage == "train" else child_predict
        row = fn(Path(corpus), models, name, cluster)
    use = usage()
    row["client_peak_rss_mb"], row["client_cpu_s"] = use["peak_rss_mb"], use["cpu_s"]
    print(json.dumps(row))


def measure_streaming(
    stage: str,
    sizes: list[int],
    n_labels: int,
    runs: list[str],
    work: Path,
    model_documents: int | None = None,
    model_labels: int | None = None,
) -> list[dict[str, Any]]:
    """One stage at growing corpus sizes: ``runs`` are featurisation modes (``chunked``,
    ``whole``) or where to run (``here``, ``local:N``). Tagging uses the model trained on the
    ``model_documents`` corpus of ``model_labels`` labels (default: the smallest size, the
    same labels; train it first)."""
    rows = []
    models = work / "models"
    for n in sizes:
        corpus = seed_corpus(n, n_labels, work)
        for run in runs:
            cluster = "-" if run == "here" else run
            if stage == "featurise":
                row = in_child(stage, str(corpus), run)
            elif stage == "train":
                row = in_child(stage, str(corpus), str(models), f"scale-{n_labels}-{n}", cluster)
            else:
                name = f"scale-{model_labels or n_labels}-{model_documents or min(sizes)}"
                row = in_child(stage, str(corpus), str(models), name, cluster)
            row = {"stage": stage, "corpus_documents": n, "corpus_labels": n_labels,
                   "run": run, "corpus_mb": folder_mb(corpus), **row}  # fmt: skip
            log(json.dumps(row))
            rows.append(row)
    return rows


def streaming_table(rows: list[dict[str, Any]]) -> str:
    """The rows of ``measure_streaming`` as a Markdown table."""
    headers = [
        "stage",
        "documents",
        "paragraphs",
        "labels",
        "run",
        "wall s",
        "docs/s",
        "peak RSS client MB",
        "peak RSS workers MB",
        "matrix / model MB",
    ]
    body = []
    for r in rows:
        workers = ", ".join(f"{w:.0f}" for w in r.get("workers_peak_rss_mb", [])) or "–"
        wall = r.get("wall_s", round(r.get("read_segment_s", 0) + r.get("featurise_s", 0), 1))
        size = r.get("matrix_mb", r.get("model_mb", "–"))
        body.append(
            [
                r["stage"],
                f"{r['corpus_documents']:,}",
                str(r.get("paragraphs", "–")),
                str(r.get("labels", r["corpus_labels"])),
                r["run"],
                str(wall),
                str(r.get("documents_per_s", "–")),
                f"{r['client_peak_rss_mb']:.0f}",
                workers,
                str(size),
            ]
        )
    return markdown_table(headers, body)


SERVE_NAME = "labels"


def serve_corpus(
    scratch: Path, n_labels: int, n_docs: int, n_validation: int
) -> tuple[Path, Path, list[dict[str, Any]]]:
    """The synthetic corpus as JSONL: ``n_docs`` documents to train on, the next
    ``n_validation`` (the same draw: the same labels' words) held out; and those."""
    docs = synthetic_documents(n_docs + n_validation, n_labels)
    train, validation = scratch / "train.jsonl", scratch / "validation.jsonl"
    write_jsonl(train, docs[:n_docs])
    write_jsonl(validation, docs[n_docs:])
    return train, validation, docs[n_docs:]


def paragraph_latency(model: Any, texts: list[str], repeats: int) -> dict[str, Any]:
    """Milliseconds of one paragraph in process: ``predict`` and its steps, each text alone
    (medians over texts, then over ``repeats``, the steps in rotated order)."""
    prepared = library.prepared(model, texts)
    decisions = [library.first_level(model, [p]) for p in prepared]
    steps: dict[str, Any] = {
        "model.predict([text])": lambda i: model.predict([texts[i]]),
        "segmentation (prepare)": lambda i: library.prepared(model, [texts[i]]),
        "first level (features, X @ W)": lambda i: library.first_level(model, [prepared[i]]),
        "second level (views, stacker)": lambda i: library.second_level(
            model, [prepared[i]], decisions[i]
        ),
    }
    for fn in steps.values():  # warm up
        for i in range(min(20, len(texts))):
            fn(i)
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in steps}
    for r in range(repeats):
        for key in rotated(list(steps), r):
            lat = latencies(steps[key], len(texts))
            runs[key].append((med(lat) * 1e3, pct(lat, 90) * 1e3))
    return {
        k: {"p50_ms": med([a for a, _ in v]), "p90_ms": med([b for _, b in v]), "runs": v}
        for k, v in runs.items()
    }


def served_rss(
    models_dir: Path, workers: int, texts: list[str], requests: int, port: int, logs: Path
) -> dict[str, Any]:
    """``tagger serve --workers N``: each worker's RSS once ready and after ``requests``
    one-paragraph requests, one client at a time; and their latency."""
    reqs = [loadgen.Request.post("/v1/predict", {"text": t}) for t in texts]
    server = Server(models_dir, SERVE_NAME, port, workers, logs / f"serve-w{workers}.log")
    with server:
        ready = workers_rss_mb(server)
        warm(server, reqs)
        done = phase(server, reqs, 1, count=requests)
        after = workers_rss_mb(server)
        processes = tree_rss(server.pid)
    return {"workers": workers, "startup_s": server.startup_s, "ready_mb": ready,
            "after_mb": after, "requests": done["requests"], "errors": done["errors"],
            "p50_ms": done["p50_ms"], "p99_ms": done["p99_ms"],
            "processes_mb": {str(k): v for k, v in processes.items()}}  # fmt: skip


def model_shape(version: Any) -> dict[str, Any]:
    """What the model holds: labels, features, non-zero weights of each level, file MB."""
    model = version.model
    coef = library.weights(model).coef
    arrays = library.array_bytes(version.folder)
    stacker = model.stacker
    return {
        "ref": version.ref,
        "file_mb": library.model_mb(version.folder),
        "labels": model.n_labels,
        "features": int(coef.shape[0]),
        "level1_nonzero": int(coef.nnz),
        "level2_nonzero": int(stacker.weights.coef.nnz) if stacker is not None else 0,
        "level2_views": stacker.n_views if stacker is not None else 0,
        "level1_mb": sum(v for k, v in arrays.items() if k.startswith("weights.")) / 1e6,
        "level2_mb": sum(v for k, v in arrays.items() if k.startswith("stacker.")) / 1e6,
        "array_bytes": arrays,
    }


def serve_labels(args: Any) -> dict[str, Any]:
    """Issue 14.5: a model of ``--serve-labels`` labels trained with the defaults, its size,
    one paragraph in process, a served worker's RSS, and its validation scores."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-scale-serve-"))
    train, validation, held = serve_corpus(
        scratch, args.serve_labels, args.serve_documents, args.serve_validation
    )
    result: dict[str, Any] = {"labels_asked": args.serve_labels, "documents": args.serve_documents,
                              "validation_documents": args.serve_validation}  # fmt: skip
    models_dir = args.serve_models_dir
    if models_dir is None:
        models_dir = scratch / "models"
        log(f"training on {train} ({args.serve_documents} documents, jobs={args.jobs})")
        wall, cpu, trained = timed(
            lambda: library.train([train], models_dir, SERVE_NAME, library.config(), args.jobs)
        )
        result["training"] = {"wall_s": wall, "cpu_s_this_process": cpu,
                              "paragraphs": trained.metadata["training"]["paragraphs"]}  # fmt: skip
        log(f"trained {trained.folder} in {wall:.0f} s (models in {models_dir})")
    version = library.load(models_dir, SERVE_NAME)
    result["model"] = model_shape(version)
    result["paragraphs"] = version.loaded.metadata["training"]["paragraphs"]
    log(json.dumps({k: v for k, v in result["model"].items() if k != "array_bytes"}))
    library.warm_up(version.model.segmenter)
    texts = [d["text"].split("\n")[0] for d in held[:SERVE_SINGLES]]
    result["paragraph_chars_median"] = med([len(t) for t in texts])
    result["in_process"] = paragraph_latency(version.model, texts, args.serve_repeats)
    result["fresh_process_mb"] = fresh_load_rss(models_dir, SERVE_NAME)
    scores = library.evaluate(version, validation)
    result["validation"] = {"micro_f1": scores["document"]["micro"]["f1"],
                            "macro_f1": scores["document"]["macro"]["f1"],
                            "p@1": scores["document"]["p@1"]}  # fmt: skip
    del version
    result["api"] = [
        served_rss(models_dir, w, texts, args.serve_requests, args.port + i, scratch)
        for i, w in enumerate(args.serve_workers)
    ]
    result["scratch"] = str(scratch)
    return result


def serve_table(result: dict[str, Any]) -> str:
    """The budgets of issue 14.5 beside what was measured."""
    m, single = result["model"], result["in_process"]
    p50 = single["model.predict([text])"]["p50_ms"]
    worst = max(max(a["after_mb"] + a["ready_mb"]) for a in result["api"])
    budget = SERVE_BUDGET

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        f"{m['labels']:,} labels, {result['documents']:,} documents "
        f"({result['paragraphs']:,} paragraphs), "
        f"{m['features']:,} features; {m['level1_nonzero']:,} level-1 and "
        f"{m['level2_nonzero']:,} level-2 non-zero weights ({m['level2_views']} views)",
        "",
        "| figure | budget | measured | met |",
        "|---|---|---|---|",
        f"| model files | ≤ {budget['model_mb']:.0f} MB | {m['file_mb']:.1f} MB (level 1 "
        f"{m['level1_mb']:.1f}, level 2 {m['level2_mb']:.1f}) | "
        f"{met(m['file_mb'] <= budget['model_mb'])} |",
        f"| one paragraph in process, p50 (p90) | ≤ {budget['paragraph_ms']:g} ms | {p50:.3f} "
        f"({single['model.predict([text])']['p90_ms']:.3f}) ms | "
        f"{met(p50 <= budget['paragraph_ms'])} |",
    ]
    for a in result["api"]:
        largest = max(a["ready_mb"] + a["after_mb"])
        rss = (
            ", ".join(f"{x:.0f}" for x in a["ready_mb"])
            + " / "
            + ", ".join(f"{x:.0f}" for x in a["after_mb"])
        )
        total = sum(p["rss_mb"] for p in a["processes_mb"].values())
        lines.append(
            f"| worker RSS, `--workers {a['workers']}`, ready / after {a['requests']} requests "
            f"| ≤ {budget['worker_rss_mb']:.0f} MB | {rss} MB (p50 {a['p50_ms']:.2f} ms, "
            f"{a['errors']} errors) | {met(largest <= budget['worker_rss_mb'])} |"
        )
        lines.append(
            f"| whole service, `--workers {a['workers']}` (supervisor, resource tracker, "
            f"workers), after | ≤ {budget['worker_rss_mb']:.0f} MB | {total:.0f} MB | "
            f"{met(total <= budget['worker_rss_mb'])} |"
        )
    steps = [[k, f"{v['p50_ms']:.3f}", f"{v['p90_ms']:.3f}"] for k, v in single.items()]
    lines += ["", markdown_table(["step, one paragraph", "p50 ms", "p90 ms"], steps)]
    v = result["validation"]
    lines += ["", f"validation documents ({result['validation_documents']:,}): document "
              f"micro-F1 {v['micro_f1']:.4f}, macro-F1 {v['macro_f1']:.4f}, P@1 {v['p@1']:.4f}; "
              f"fresh process after load {result['fresh_process_mb']['loaded_mb']:.0f} MB; "
              f"largest worker {worst:.0f} MB"]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = arguments("scale", __doc__, data=False)
    parser.add_argument("--paragraphs", type=int, nargs="+", default=[5_000, 20_000])
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--stage", choices=STAGES,
        help="instead of the fitting table: read+featurise, train or tag generated seed-format "
        "corpora of --documents documents (--runs: chunked/whole, or here/local:N)",
    )  # fmt: skip
    parser.add_argument("--documents", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", nargs="+", default=None)
    parser.add_argument("--model-documents", type=int, default=None)
    parser.add_argument("--model-labels", type=int, default=None)
    parser.add_argument("--work", type=Path, default=WORK, help="generated corpora and models")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    serve_options(parser)
    args = parser.parse_args()
    if args.child:
        return run_child(args.child)
    if args.serve_labels:
        return serve_main(args)
    if args.stage:
        runs = args.runs or (["chunked"] if args.stage == "featurise" else ["here"])
        rows = measure_streaming(
            args.stage, args.documents, args.labels, runs, args.work, args.model_documents,
            args.model_labels,
        )  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"scale-{args.stage}.json"
        old = json.loads(path.read_text())["rows"] if path.exists() else []
        report = {"versions": library.versions(), "rows": old + rows}
        path.write_text(json.dumps(report, indent=2))
        print(streaming_table(rows))
        return None
    rows = [r for n in args.paragraphs for r in measure(n, args.labels, args.workers)]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"versions": library.versions(), "rows": rows}
    (args.out / "scale.json").write_text(json.dumps(report, indent=2))
    print(table(rows))


def serve_options(parser: Any) -> None:
    """The options of the serving section (``--serve-labels N`` runs it instead of the fits)."""
    group = parser.add_argument_group("serving a model of many labels (issue 14.5)")
    group.add_argument(
        "--serve-labels",
        type=int,
        metavar="N",
        help="train a model of N labels and measure its size, latency and RSS",
    )
    group.add_argument("--serve-documents", type=int, default=12_000, help="training documents")
    group.add_argument("--serve-validation", type=int, default=1_200, help="held-out documents")
    group.add_argument(
        "--serve-models-dir",
        type=Path,
        help="a models folder already holding the model 'labels' of this corpus",
    )
    group.add_argument("--serve-workers", type=int, nargs="+", default=[1, 2])
    group.add_argument("--serve-requests", type=int, default=400)
    group.add_argument("--serve-repeats", type=int, default=3)
    group.add_argument("--jobs", type=int, default=2)
    group.add_argument("--port", type=int, default=8150)  # fmt: skip


def serve_main(args: Any) -> None:
    """Run the serving section, write its report and print its table."""
    report = Report("scale-serve", args.out)
    report.data["serve"] = serve_labels(args)
    report.end()
    table = serve_table(report.data["serve"]) + "\n\n" + report.load_line()
    report.show(table)
    print(f"wrote {report.write()}")


if __name__ == "__main__":
    main()
