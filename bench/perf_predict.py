"""The predict section of bench.perf: a model in process, beside a per-label Python loop.

One-paragraph latencies of ``predict``, ``prepare``, ``features`` and ``score_prepared`` on
the first SINGLE_TEXTS tiku/test texts, batch throughput of ``score_prepared`` and
``predict`` on BATCH_TEXTS; the reference scores the same features label by label, as a
one-vs-rest ensemble does. Also the model's size and shape and the RSS of a fresh process
that loaded it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench import library
from bench.harness import (
    ROOT,
    Table,
    first_texts,
    fmt,
    latencies,
    logger,
    med,
    pct,
    rotated,
    timed,
    vm_rss_mb,
)

log = logger("perf")
SINGLE_TEXTS = 200
BATCH_TEXTS = 1000

# A new interpreter: its RSS at start, after the imports a model load needs, and after
# loading and warming the model up (bench.library imports no more than that at its top).
FRESH_LOAD = """\
import json, sys, time
from pathlib import Path
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
base = rss()
from bench.library import load, warm_up
imported = rss()
t = time.perf_counter()
m = load(Path(sys.argv[1]), sys.argv[2])
warm_up(m.model.segmenter)
m.model.predict(['预热 warm up'])
print(json.dumps({'python_mb': base, 'imported_mb': imported, 'loaded_mb': rss(),
                  'load_s': time.perf_counter() - t}))
"""


def weight_columns(model: Any) -> list[sp.csc_matrix]:
    """The weight column of each label, sliced once (as each one-vs-rest estimator holds)."""
    coef = library.weights(model).coef.tocsc()
    return [coef[:, j] for j in range(coef.shape[1])]


def per_label_scores(
    model: Any, columns: list[sp.csc_matrix], prepared: Sequence[str]
) -> np.ndarray:
    """Reference scoring: the same features, then a Python loop of ``x @ coef[:, j]``."""
    x = library.features(model, prepared)
    out = np.empty((x.shape[0], len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        out[:, j] = (x @ column).toarray().ravel()
    return library.calibrate(model, out + library.weights(model).intercept)


def fresh_load_rss(models_dir: Path, name: str) -> dict[str, float]:
    """RSS and load time of a new Python process that loads and warms up the model."""
    out = subprocess.run(
        [sys.executable, "-c", FRESH_LOAD, str(models_dir), name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(
    models_dir: Path, name: str, data: Path, repeats: int
) -> tuple[dict[str, Any], list[Table]]:
    """In-process latency and throughput of the model next to a per-label loop."""
    t0 = time.perf_counter()
    version = library.load(models_dir, name)
    load_s = time.perf_counter() - t0
    model = version.model
    library.warm_up(model.segmenter)
    texts = first_texts(data / "tiku" / "test", BATCH_TEXTS)
    singles = texts[:SINGLE_TEXTS]
    prepared = library.prepared(model, texts)
    columns = weight_columns(model)
    diff = float(
        np.abs(
            model.score_prepared(prepared[:SINGLE_TEXTS])
            - per_label_scores(model, columns, prepared[:SINGLE_TEXTS])
        ).max()
    )
    model.predict(singles[:5])
    ref = "per-label loop on [prepared]"
    single: dict[str, Callable[[int], Any]] = {
        ref: lambda i: per_label_scores(model, columns, [prepared[i]]),
        "model.predict([text])": lambda i: model.predict([singles[i]]),
        "model.prepare([text]) (segmentation)": lambda i: library.prepared(model, [singles[i]]),
        "model.features([prepared]) (TF-IDF)": lambda i: library.features(model, [prepared[i]]),
        "model.score_prepared([prepared])": lambda i: model.score_prepared([prepared[i]]),
    }
    batch_ref = f"per-label loop on {len(texts)} prepared"
    batch: dict[str, Callable[[], Any]] = {
        batch_ref: lambda: per_label_scores(model, columns, prepared),
        f"model.score_prepared({len(texts)} prepared)": lambda: model.score_prepared(prepared),
        f"model.predict({len(texts)} texts)": lambda: model.predict(texts),
    }
    single_runs: dict[str, list[dict[str, float]]] = {k: [] for k in single}
    batch_runs: dict[str, list[tuple[float, float]]] = {k: [] for k in batch}
    for r in range(repeats):
        for key in rotated(list(single), r):
            lat = latencies(single[key], len(singles))
            single_runs[key].append(
                {"p50": med(lat), "p90": pct(lat, 90), "mean": float(np.mean(lat))}
            )
        for key in rotated(list(batch), r):
            wall, cpu, _ = timed(batch[key])
            batch_runs[key].append((len(texts) / wall, len(texts) / cpu if cpu else float("nan")))
        log(f"predict repeat {r + 1}/{repeats} done")

    ref_p50 = med([x["p50"] for x in single_runs[ref]])
    t_single = Table(
        f"predict: one text per call, first {len(singles)} tiku/test texts "
        f"(median over texts, then over {repeats} repeats)",
        ["call", "p50 ms", "p90 ms", "mean ms", "× ref (p50)"],
    )
    result: dict[str, Any] = {"single": {}, "batch": {}, "reference": ref}
    for key, values in single_runs.items():
        p50, p90 = med([x["p50"] for x in values]), med([x["p90"] for x in values])
        mean = med([x["mean"] for x in values])
        label = f"{key} (reference)" if key == ref else key
        t_single.rows.append(
            [label, fmt(p50 * 1e3, 3), fmt(p90 * 1e3, 3), fmt(mean * 1e3, 3), fmt(p50 / ref_p50, 3)]
        )
        result["single"][key] = {"p50_s": p50, "p90_s": p90, "mean_s": mean, "runs": values}
    t_single.notes.append(
        f"reference: the same TF-IDF transform, then `x @ coef[:, j]` for each of the "
        f"{model.n_labels} labels in a Python loop (columns sliced once), intercept and "
        f"calibration; its scores differ from score_prepared by at most {diff:.2e}. "
        "× ref < 1 means faster than the reference."
    )
    n_pars = sum(len(model.split(t)) for t in texts)
    ref_tp = med([w for w, _ in batch_runs[batch_ref]])
    t_batch = Table(
        f"predict: batch throughput, first {len(texts)} tiku/test texts ({n_pars} paragraphs "
        f"after splitting; median of {repeats})",
        ["call", "texts/s wall", "texts/CPU-s", "× ref (wall)"],
    )
    for key, values in batch_runs.items():
        wall, cpu = med([w for w, _ in values]), med([c for _, c in values])
        label = f"{key} (reference)" if key == batch_ref else key
        t_batch.rows.append([label, fmt(wall, 1), fmt(cpu, 1), fmt(wall / ref_tp)])
        result["batch"][key] = {"texts_per_s": wall, "texts_per_cpu_s": cpu, "runs": values}
    t_batch.notes.append("× ref > 1 means more texts per second than the per-label loop.")

    fresh = fresh_load_rss(models_dir, name)
    coef = library.weights(model).coef
    info = {
        "model": version.ref,
        "folder": str(version.folder),
        "file_mb": library.model_mb(version.folder),
        "labels": model.n_labels,
        "features": int(coef.shape[0]),
        "nonzero_weights": int(coef.nnz),
        "weight_density": coef.nnz / max(1, np.prod(coef.shape)),
        "load_s_this_process": load_s,
        "fresh_process": fresh,
        "this_process_rss_mb": vm_rss_mb(),
        "segmenter": model.segmenter,
        "max_abs_score_diff_vs_reference": diff,
    }
    result["model"] = info
    t_model = Table(
        f"predict: model {version.ref}",
        [
            "file MB",
            "labels",
            "features",
            "non-zero weights",
            "density",
            "load s",
            "RSS MB fresh python",
            "+ imports",
            "+ model loaded",
        ],
        [
            [
                fmt(info["file_mb"]),
                str(info["labels"]),
                f"{info['features']:,}",
                f"{info['nonzero_weights']:,}",
                f"{info['weight_density']:.3f}",
                fmt(fresh["load_s"]),
                fmt(fresh["python_mb"], 0),
                fmt(fresh["imported_mb"], 0),
                fmt(fresh["loaded_mb"], 0),
            ]
        ],
        [
            f"RSS measured in a new process (VmRSS after start, imports, load + warm-up); this "
            f"benchmark process is at {info['this_process_rss_mb']:.0f} MB."
        ],
    )
    return result, [t_model, t_single, t_batch]
