"""Performance benchmark of tagger: segmentation, in-process prediction and the HTTP API.

    .venv/bin/python bench/perf.py [--model-dir DIR --model NAME] [--train-tiku [--set K=V]...]
                                   [--repeats 5]
                                   [--sections seg,predict,api] [--port 8765] [--seg-mb 5]
                                   [--data ../shared/data] [--out bench/out]

Sections (each row is a median over --repeats runs, or over requests for the API, next to
its ratio to a reference measured in the same run, so a busy machine shifts both alike):

* seg: MB/s of tagger's ``tokenize`` with rjieba and with jieba, of plain ``rjieba.cut`` and
  of plain ``jieba.lcut`` (the reference) on the first --seg-mb MB of raw fudan/test text,
  per wall second and per CPU second of the one thread doing it; the token agreement of
  tagger's rjieba tokens with tagger's jieba tokens (same (start, end) span, as in
  bench/invariance.py).
* predict: a tiku model (--model-dir/--model, or --train-tiku to train one into a scratch
  folder first) in process: one-paragraph latencies of ``predict``, ``prepare``,
  ``vectorizer.transform`` and ``score_prepared`` on the first 200 tiku/test texts, batch
  throughput of ``score_prepared`` and ``predict`` on 1000 texts; the reference is a
  per-label Python loop over the weight columns (as a one-vs-rest ensemble scores), on the
  same inputs. Also the model's size, shape and the RSS of a fresh process that loaded it.
* api: ``tagger serve`` with 1 and 2 workers on 127.0.0.1:--port, driven by bench/loadgen.py
  (keep-alive sockets, requests encoded once; an HTTP client library would use more CPU per
  request than the server) in this process: sequential single-text requests (p50/p99), 16
  concurrent clients for 10 s (req/s, p50/p99, errors), 64-text batches from 2 clients for
  10 s (texts/s); the reference is GET /healthz (the framework floor) in the same modes.
  Each phase reports the server's CPU seconds (sum over its process tree), this client's
  CPU seconds and the server's RSS (sum over the tree). The server is always stopped.

The tables are printed as markdown and everything is written to --out/perf-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier import tokenizer  # noqa: E402
from classifier.corpus import read_corpus  # noqa: E402
from classifier.model import TopicClassifier  # noqa: E402
from classifier.persistence import MODEL_FILE, load_model  # noqa: E402
from training.train import library_versions  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
from invariance import token_agreement  # noqa: E402

SECTIONS = ("seg", "predict", "api")
SINGLE_TEXTS = 200
BATCH_TEXTS = 1000
SEQ_REQUESTS = 500
CONC_CLIENTS = 16
CONC_SECONDS = 10.0
API_BATCH = 64
BATCH_CLIENTS = 8  # with 2, both connections land on one worker half the time
BATCH_SECONDS = 10.0
WARMUP_REQUESTS = 20
WORKERS = (1, 2)
STARTUP_TIMEOUT_S = 180.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- small helpers ------------------------------------------------------------------------
@dataclass
class Table:
    """A titled markdown table with notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """Render the table as markdown."""
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |"]
        lines.append("|" + "---|" * len(self.headers))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def fmt(x: float | None, digits: int = 2) -> str:
    """Format a number for a table cell (``-`` when missing)."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:,.{digits}f}"


def med(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(np.median(values))


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile, NaN for an empty sequence."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def rotated(items: list[str], k: int) -> list[str]:
    """``items`` rotated by ``k``, so no candidate always runs first within a repeat."""
    k %= len(items)
    return items[k:] + items[:k]


def log(message: str) -> None:
    """Progress message on stderr."""
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``fn``; return wall seconds, process CPU seconds and its result."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def first_texts(folder: Path, n: int) -> list[str]:
    """The texts of the first ``n`` documents of a corpus folder (sorted file order)."""
    return [doc.text for doc, _ in zip(read_corpus([folder]), range(n), strict=False)]


def first_megabytes(folder: Path, mb: float) -> list[str]:
    """Whole document texts from the start of a corpus folder until ``mb`` MB of UTF-8."""
    texts: list[str] = []
    size = 0
    for doc in read_corpus([folder]):
        if size >= mb * 1e6:
            break
        texts.append(doc.text)
        size += len(doc.text.encode())
    return texts


# --- /proc --------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[int, float] | None:
    """Parent pid and CPU seconds (utime + stime) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def vm_rss_mb(pid: int | str = "self") -> float:
    """VmRSS of a process in MB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cmdline(pid: int) -> str:
    """The command line of a process, shortened ('' when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\x00", b" ").decode(errors="replace").strip()[:200]


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            parents[int(entry)] = stat[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by a process tree (live processes only)."""
    return sum(s[1] for pid in process_tree(root) if (s := proc_stat(pid)) is not None)


def tree_rss_mb(root: int) -> float:
    """Sum of VmRSS over a process tree, in MB."""
    return sum(vm_rss_mb(pid) for pid in process_tree(root))


def client_cpu_s() -> float:
    """CPU seconds used so far by this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- seg ----------------------------------------------------------------------------------
def seg_section(data: Path, mb: float, repeats: int) -> tuple[dict[str, Any], list[Table]]:
    """Segmentation throughput of tagger's tokenizer and of the plain segmenters."""
    import jieba
    import rjieba

    texts = first_megabytes(data / "fudan" / "test", mb)
    size_mb = sum(len(t.encode()) for t in texts) / 1e6
    for seg in tokenizer.SEGMENTERS:
        tokenizer.warm_up(seg)  # loads both dictionaries (jieba's with tagger's cache folder)
    ref = "jieba.lcut(text)"
    candidates: dict[str, Callable[[str], Any]] = {
        ref: jieba.lcut,
        "rjieba.cut(text)": rjieba.cut,
        'tokenize(text, "jieba")': lambda t: tokenizer.tokenize(t, "jieba"),
        'tokenize(text, "rjieba")': lambda t: tokenizer.tokenize(t, "rjieba"),
        "normalize(text) (part of tokenize)": tokenizer.normalize,
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    outputs: dict[str, list[Any]] = {}
    for r in range(repeats):
        for name in rotated(list(candidates), r):
            fn = candidates[name]
            wall, cpu, out = timed(lambda fn=fn: [fn(t) for t in texts])
            runs[name].append((size_mb / wall, size_mb / cpu if cpu > 0 else float("nan")))
            outputs.setdefault(name, out)
        log(f"seg repeat {r + 1}/{repeats} done")
    hit = total = same = 0
    for a, b in zip(
        outputs['tokenize(text, "rjieba")'], outputs['tokenize(text, "jieba")'], strict=True
    ):
        h, n = token_agreement(a, b)
        hit, total, same = hit + h, total + n, same + (a == b)
    ref_wall = med([w for w, _ in runs[ref]])
    ref_cpu = med([c for _, c in runs[ref]])
    table = Table(
        f"seg: segmentation throughput, {len(texts)} fudan/test documents, {size_mb:.2f} MB "
        f"(median of {repeats})",
        ["function", "MB/s wall", "MB/CPU-s", "× ref (CPU)", "MB/CPU-s min–max"],
    )
    result: dict[str, Any] = {"documents": len(texts), "mb": size_mb, "reference": ref, "rows": {}}
    for name, values in runs.items():
        wall, cpu = med([w for w, _ in values]), med([c for _, c in values])
        lo, hi = min(c for _, c in values), max(c for _, c in values)
        label = f"{name} (reference)" if name == ref else name
        table.rows.append([label, fmt(wall), fmt(cpu), fmt(cpu / ref_cpu), f"{fmt(lo)}–{fmt(hi)}"])
        result["rows"][name] = {
            "mb_per_s_wall": wall,
            "mb_per_cpu_s": cpu,
            "ratio_cpu": cpu / ref_cpu,
            "ratio_wall": wall / ref_wall,
            "runs": values,
        }
    result["agreement"] = {"tokens_hit": hit, "tokens": total, "identical_documents": same}
    table.notes += [
        "one thread: MB/CPU-s is the per-core rate; MB/s wall also counts time other jobs took "
        "the core. × ref = MB/CPU-s ÷ that of plain jieba.lcut on the same text.",
        "plain segmenters cut the raw text; tokenize() also normalizes (NFKC, case-fold, "
        "spaces next to CJK) and splits pieces by script.",
        f"token agreement: {hit}/{total} = {hit / max(total, 1):.4%} of tagger's rjieba tokens "
        f"have the same (start, end) span among tagger's jieba tokens; identical token lists "
        f"for {same}/{len(texts)} documents.",
    ]
    return result, [table]


# --- predict ------------------------------------------------------------------------------
def weight_columns(model: TopicClassifier) -> list[sp.csc_matrix]:
    """The weight column of each label, sliced once (as each one-vs-rest estimator holds)."""
    coef = model.coef_.tocsc()
    return [coef[:, j] for j in range(coef.shape[1])]


def per_label_scores(
    model: TopicClassifier, columns: list[sp.csc_matrix], prepared: Sequence[str]
) -> np.ndarray:
    """Reference scoring: the same features, then a Python loop of ``x @ coef[:, j]``."""
    x = model.features(prepared)
    out = np.empty((x.shape[0], len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        out[:, j] = (x @ column).toarray().ravel()
    return model.calibrate(out + model.intercept_)


def fresh_load_rss(models_dir: Path, name: str) -> dict[str, float]:
    """RSS and load time of a new Python process that loads and warms up the model."""
    code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "base = rss()\n"
        "from classifier.persistence import load_model\n"
        "from classifier.tokenizer import warm_up\n"
        "imported = rss()\n"
        "t = time.perf_counter()\n"
        "m = load_model(Path(sys.argv[1]), sys.argv[2])\n"
        "warm_up(m.model.segmenter)\n"
        "m.model.predict(['预热 warm up'])\n"
        "print(json.dumps({'python_mb': base, 'imported_mb': imported, 'loaded_mb': rss(),\n"
        "                  'load_s': time.perf_counter() - t}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(models_dir), name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def single_latencies(fn: Callable[[int], Any], n: int) -> list[float]:
    """Wall seconds of ``fn(i)`` for each i < n."""
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        lat.append(time.perf_counter() - t0)
    return lat


def predict_section(
    models_dir: Path, name: str, data: Path, repeats: int
) -> tuple[dict[str, Any], list[Table]]:
    """In-process latency and throughput of the model next to a per-label loop."""
    t0 = time.perf_counter()
    loaded = load_model(models_dir, name)
    load_s = time.perf_counter() - t0
    model: TopicClassifier = loaded.model
    tokenizer.warm_up(model.segmenter)
    texts = first_texts(data / "tiku" / "test", BATCH_TEXTS)
    singles = texts[:SINGLE_TEXTS]
    prepared = model.prepare(texts)
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
        "model.prepare([text]) (segmentation)": lambda i: model.prepare([singles[i]]),
        "model.features([prepared]) (TF-IDF)": lambda i: model.features([prepared[i]]),
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
            lat = single_latencies(single[key], len(singles))
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
    model_file = loaded.folder / MODEL_FILE
    info = {
        "model": loaded.ref,
        "folder": str(loaded.folder),
        "file_mb": model_file.stat().st_size / 1e6,
        "labels": model.n_labels,
        "features": int(model.coef_.shape[0]),
        "nonzero_weights": int(model.coef_.nnz),
        "weight_density": model.coef_.nnz / max(1, np.prod(model.coef_.shape)),
        "load_s_this_process": load_s,
        "fresh_process": fresh,
        "this_process_rss_mb": vm_rss_mb(),
        "segmenter": model.segmenter,
        "max_abs_score_diff_vs_reference": diff,
    }
    result["model"] = info
    t_model = Table(
        f"predict: model {loaded.ref}",
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


# --- api ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Req:
    """One HTTP request to send: method, path, JSON body and how many texts it carries."""

    method: str
    path: str
    body: bytes | None = None
    items: int = 1


LoadResult = loadgen.LoadResult  # what a load phase measured, whichever generator ran it


async def _send(client: Any, req: Req) -> tuple[float, str]:
    """Send one request; return its latency and an error message ('' when it succeeded)."""
    import httpx

    headers = {"content-type": "application/json"} if req.body is not None else None
    t0 = time.perf_counter()
    try:
        resp = await client.request(req.method, req.path, content=req.body, headers=headers)
        latency = time.perf_counter() - t0
        if resp.status_code != 200:
            return latency, f"HTTP {resp.status_code}: {resp.text[:200]}"
        if req.body is not None and len(resp.json().get("results", [])) != req.items:
            return latency, f"wrong number of results: {resp.text[:200]}"
    except (httpx.HTTPError, ValueError) as exc:
        return time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    return latency, ""


async def drive(
    base_url: str, reqs: list[Req], clients: int, count: int | None, seconds: float | None
) -> LoadResult:
    """``clients`` concurrent loops sending ``reqs`` round-robin, for a count or a duration."""
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    result = LoadResult()
    counter = itertools.count()
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=60.0, trust_env=False
    ) as client:
        deadline = time.perf_counter() + seconds if seconds else float("inf")

        async def loop() -> None:
            while True:
                i = next(counter)
                if (count is not None and i >= count) or time.perf_counter() >= deadline:
                    return
                req = reqs[i % len(reqs)]
                result.record(*await _send(client, req), req.items)

        t0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        result.wall_s = time.perf_counter() - t0
    return result


def drive_raw(
    base_url: str, reqs: list[Req], clients: int, count: int | None, seconds: float | None
) -> LoadResult:
    """The same load through bench/loadgen.py (keep-alive sockets, requests encoded once)."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    raw = [loadgen.Request.make(r.method, r.path, r.body, r.items) for r in reqs]
    return loadgen.drive(host, int(port), raw, clients, count, seconds)


def run_phase(
    base_url: str,
    server_pid: int,
    reqs: list[Req],
    clients: int,
    count: int | None = None,
    seconds: float | None = None,
    generator: str = "httpx",
) -> dict[str, Any]:
    """Run one load phase; add server and client CPU seconds and the server RSS.

    ``generator`` is ``raw`` (bench/loadgen.py) or ``httpx`` (httpx.AsyncClient).
    """
    server0, client0 = tree_cpu_s(server_pid), client_cpu_s()
    if generator == "raw":
        res = drive_raw(base_url, reqs, clients, count, seconds)
    else:
        res = asyncio.run(drive(base_url, reqs, clients, count, seconds))
    server_cpu, client_cpu = tree_cpu_s(server_pid) - server0, client_cpu_s() - client0
    lat = res.latencies
    return {
        "clients": clients,
        "requests": res.ok + res.errors,
        "ok": res.ok,
        "errors": res.errors,
        "error_messages": res.messages,
        "wall_s": res.wall_s,
        "req_per_s": res.ok / res.wall_s if res.wall_s else float("nan"),
        "items_per_s": res.items / res.wall_s if res.wall_s else float("nan"),
        "p50_ms": pct(lat, 50) * 1e3,
        "p99_ms": pct(lat, 99) * 1e3,
        "mean_ms": float(np.mean(lat)) * 1e3 if lat else float("nan"),
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "server_cpu_ms_per_req": server_cpu / max(res.ok, 1) * 1e3,
        "server_rss_mb": tree_rss_mb(server_pid),
    }


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tagger_command() -> list[str]:
    """The ``tagger`` command of this checkout (cwd first on sys.path, unlike the script)."""
    # The venv's `tagger` script imports whichever checkout the editable install points at,
    # so a benchmark run from another worktree would serve that checkout's code.
    return [sys.executable, "-m", "training.cli"]


def wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> float:
    """Wait for /healthz, then for the server's CPU to settle (every worker loaded)."""
    import httpx

    t0 = time.perf_counter()
    deadline = t0 + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=5.0, trust_env=False) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {tail(log_path)}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no /healthz after {STARTUP_TIMEOUT_S:.0f} s: {tail(log_path)}")
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    previous = tree_cpu_s(proc.pid)
    while time.perf_counter() < deadline:
        time.sleep(1.0)
        current = tree_cpu_s(proc.pid)
        if current - previous < 0.05:
            break
        previous = current
    return time.perf_counter() - t0


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file."""
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (uvicorn stops its workers), then SIGKILL its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the session started for this server only
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def api_requests(texts: list[str]) -> dict[str, list[Req]]:
    """The request sets: healthz, single-text predicts and 64-text batches."""

    def body(payload: dict[str, Any]) -> bytes:
        return json.dumps(payload, ensure_ascii=False).encode()

    singles = [Req("POST", "/v1/predict", body({"text": t})) for t in texts[:SINGLE_TEXTS]]
    batches = [
        Req("POST", "/v1/predict", body({"texts": texts[i : i + API_BATCH]}), API_BATCH)
        for i in range(0, len(texts) - API_BATCH + 1, API_BATCH)
    ]
    return {"healthz": [Req("GET", "/healthz")], "single": singles, "batch": batches}


def start_server(
    models_dir: Path,
    ref: str,
    port: int,
    workers: int,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``tagger serve`` on 127.0.0.1 in its own session (see stop_server), log to a file."""
    cmd = tagger_command() + [
        "serve",
        "--models-dir",
        str(models_dir),
        "--model",
        ref,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "TAGGER_DEBUG": "1", **(extra_env or {})}
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def serve_and_load(
    models_dir: Path, name: str, port: int, workers: int, reqs: dict[str, list[Req]], logs: Path
) -> dict[str, Any]:
    """Start ``tagger serve``, run every phase against it, always stop it."""
    if port_in_use(port):
        raise RuntimeError(f"127.0.0.1:{port} is already in use; choose another --port")
    base_url = f"http://127.0.0.1:{port}"
    log_path = logs / f"serve-w{workers}.log"
    proc = start_server(models_dir, name, port, workers, log_path)
    out: dict[str, Any] = {"command": proc.args, "phases": {}}
    try:
        out["startup_s"] = wait_ready(proc, base_url, log_path)
        out["processes"] = len(process_tree(proc.pid))
        out["process_rss_mb_idle"] = {
            pid: {"rss_mb": vm_rss_mb(pid), "cmd": cmdline(pid)} for pid in process_tree(proc.pid)
        }
        out["rss_mb_idle"] = tree_rss_mb(proc.pid)
        phases = [
            ("healthz sequential", reqs["healthz"], 1, SEQ_REQUESTS, None),
            ("predict sequential", reqs["single"], 1, SEQ_REQUESTS, None),
            ("healthz concurrent", reqs["healthz"], CONC_CLIENTS, None, CONC_SECONDS),
            ("predict concurrent", reqs["single"], CONC_CLIENTS, None, CONC_SECONDS),
            (f"predict batch {API_BATCH}", reqs["batch"], BATCH_CLIENTS, None, BATCH_SECONDS),
        ]
        run_phase(base_url, proc.pid, reqs["single"], 2, count=WARMUP_REQUESTS, generator="raw")
        for phase, phase_reqs, clients, count, seconds in phases:
            log(f"api workers={workers}: {phase}")
            out["phases"][phase] = run_phase(
                base_url, proc.pid, phase_reqs, clients, count, seconds, generator="raw"
            )
        out["alive_after"] = proc.poll() is None
        out["process_rss_mb_end"] = {
            pid: {"rss_mb": vm_rss_mb(pid), "cmd": cmdline(pid)} for pid in process_tree(proc.pid)
        }
    finally:
        stop_server(proc)
    out["server_log_tail"] = tail(log_path)
    return out


def api_section(
    models_dir: Path, name: str, data: Path, port: int, in_process: dict[str, Any] | None
) -> tuple[dict[str, Any], list[Table]]:
    """HTTP latency and throughput of ``tagger serve`` with 1 and 2 workers."""
    texts = first_texts(data / "tiku" / "test", BATCH_TEXTS)
    reqs = api_requests(texts)
    result: dict[str, Any] = {"workers": {}}
    table = Table(
        "api: tagger serve on 127.0.0.1, bench/loadgen.py load generator in this process",
        [
            "workers",
            "phase",
            "clients",
            "ok",
            "errors",
            "req/s",
            "texts/s",
            "p50 ms",
            "p99 ms",
            "× ref",
            "server CPU s",
            "server CPU ms/req",
            "client CPU s",
            "server RSS MB",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="tagger-perf-logs-") as logs:
        for workers in WORKERS:
            try:
                run = serve_and_load(models_dir, name, port, workers, reqs, Path(logs))
            except Exception as exc:  # reported in the table and the JSON, then go on
                result["workers"][workers] = {"error": f"{type(exc).__name__}: {exc}"}
                table.rows.append(
                    [str(workers), f"ERROR {type(exc).__name__}: {exc}"]
                    + [""] * (len(table.headers) - 2)
                )
                continue
            result["workers"][workers] = run
            table.rows += api_rows(workers, run["phases"])
            table.notes.append(
                f"workers={workers}: ready after {run['startup_s']:.1f} s, {run['processes']} "
                f"processes, idle RSS {run['rss_mb_idle']:.0f} MB in all; per process idle "
                f"{process_rss(run['process_rss_mb_idle'])}, after the phases "
                f"{process_rss(run.get('process_rss_mb_end', {}))}"
                + ("" if run.get("alive_after", True) else "; SERVER DIED during the phases")
            )
    table.notes += [
        "× ref: p50 ÷ healthz p50 for sequential phases; req/s ÷ healthz req/s (concurrent); "
        "texts/s ÷ in-process model.predict(1000 texts) texts/s for batches.",
        f"sequential: {SEQ_REQUESTS} requests one after another; concurrent: {CONC_CLIENTS} "
        f"clients for {CONC_SECONDS:.0f} s; batch: {BATCH_CLIENTS} clients sending "
        f"{API_BATCH} texts per request for {BATCH_SECONDS:.0f} s. The load generator shares "
        "the 2 cores with the server: see client CPU s.",
    ]
    for workers, run in result["workers"].items():
        for phase, p in run.get("phases", {}).items():
            if p["clients"] > 1 and p["client_cpu_s"] > p["server_cpu_s"]:
                table.notes.append(
                    f"workers={workers} {phase}: the load generator used more CPU "
                    f"({p['client_cpu_s'] / max(p['ok'], 1) * 1e3:.2f} ms/req) than the server "
                    f"({p['server_cpu_ms_per_req']:.2f} ms/req): on 2 shared cores it, not the "
                    "server, may be what limits req/s here."
                )
            if p["errors"]:
                table.notes.append(
                    f"workers={workers} {phase}: {p['errors']} errors, e.g. "
                    f"{p['error_messages'][0]}"
                )
    if in_process:
        p50 = in_process["single"]["model.predict([text])"]["p50_s"] * 1e3
        result["in_process_predict_p50_ms"] = p50
        for workers, run in result["workers"].items():
            phases = run.get("phases", {})
            if "predict sequential" in phases and "healthz sequential" in phases:
                api = phases["predict sequential"]["p50_ms"]
                floor = phases["healthz sequential"]["p50_ms"]
                table.notes.append(
                    f"workers={workers}: predict sequential p50 {api:.2f} ms vs healthz p50 + "
                    f"in-process model.predict([text]) p50 = {floor:.2f} + {p50:.2f} = "
                    f"{floor + p50:.2f} ms: {api - floor - p50:+.2f} ms not explained by either."
                )
    _fill_ratios(table, result, in_process)
    return result, [table]


def process_rss(processes: dict[int, dict[str, Any]]) -> str:
    """``MB (role)`` of each server process, largest first: supervisor, worker or helper."""

    def role(cmd: str) -> str:
        if "spawn_main" in cmd:
            return "worker"
        return "helper" if "resource_tracker" in cmd else "main"

    rows = sorted(processes.values(), key=lambda p: -p["rss_mb"])
    return ", ".join(f"{p['rss_mb']:.0f} MB ({role(p['cmd'])})" for p in rows) or "-"


def api_rows(workers: int, phases: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Table rows of one server run (the ratio column is filled in later)."""
    return [
        [
            str(workers),
            phase,
            str(p["clients"]),
            str(p["ok"]),
            str(p["errors"]),
            fmt(p["req_per_s"], 1),
            fmt(p["items_per_s"], 1),
            fmt(p["p50_ms"], 2),
            fmt(p["p99_ms"], 2),
            "",
            fmt(p["server_cpu_s"], 2),
            fmt(p["server_cpu_ms_per_req"], 2),
            fmt(p["client_cpu_s"], 2),
            fmt(p["server_rss_mb"], 0),
        ]
        for phase, p in phases.items()
    ]


def _fill_ratios(table: Table, result: dict[str, Any], in_process: dict[str, Any] | None) -> None:
    """Put each phase's ratio to its reference into the table and the JSON."""
    batch_ref = None
    if in_process:
        batch_ref = next(
            (v["texts_per_s"] for k, v in in_process["batch"].items() if "predict(" in k), None
        )
    for row in table.rows:
        run = result["workers"].get(int(row[0]), {})
        p = run.get("phases", {}).get(row[1])
        if p is None:
            continue
        hz_seq = run["phases"].get("healthz sequential", {})
        hz_conc = run["phases"].get("healthz concurrent", {})
        if row[1].endswith("sequential"):
            ratio = p["p50_ms"] / hz_seq.get("p50_ms", float("nan"))
        elif row[1].endswith("concurrent"):
            ratio = p["req_per_s"] / hz_conc.get("req_per_s", float("nan"))
        else:
            ratio = p["items_per_s"] / batch_ref if batch_ref else float("nan")
        p["ratio_to_reference"] = ratio
        row[9] = fmt(ratio, 3)


def api_problems(result: dict[str, Any]) -> int:
    """Failed server runs plus failed requests in an api section result (0 for others)."""
    runs = result.get("workers", {}).values()
    return sum("error" in run for run in runs) + sum(
        p["errors"] for run in runs for p in run.get("phases", {}).values()
    )


# --- main ---------------------------------------------------------------------------------
def train_tiku(
    data: Path, scratch: Path, overrides: Sequence[str] = ()
) -> tuple[Path, str, dict[str, Any]]:
    """Train a tiku model into the scratch folder; return its folder, name and timing."""
    from classifier.config import TrainingConfig
    from training.cli import _parse_set
    from training.train import train

    models = scratch / "models"
    cfg = TrainingConfig().replace(**_parse_set(list(overrides)))
    log(f"training a tiku model (jobs=2, {' '.join(overrides) or 'defaults'}), a few minutes")
    wall, cpu, res = timed(
        lambda: train([data / "tiku" / "train"], models, name="tiku", config=cfg, jobs=2)
    )
    log(f"trained {res.folder} in {wall:.0f} s")
    return models, "tiku", {"folder": str(res.folder), "wall_s": wall, "parent_cpu_s": cpu}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, help="models folder holding --model")
    parser.add_argument("--model", default="tiku", help="model as NAME[@VERSION]")
    parser.add_argument("--train-tiku", action="store_true", help="train a tiku model first")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for --train-tiku (e.g. rare_labels=keep prune_below=0.01)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seg-mb", type=float, default=5.0, help="MB of fudan/test to segment")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    needs_model = {"predict", "api"} & set(args.sections)
    if needs_model and not (args.train_tiku or args.model_dir):
        parser.error("the predict and api sections need --model-dir (and --model) or --train-tiku")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections, print their tables and write the JSON."""
    args = parse_args(argv)
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "versions": library_versions(),
        "sections": {},
    }
    tables: list[Table] = []
    failed = False
    scratch = Path(tempfile.mkdtemp(prefix="tagger-perf-"))
    try:
        models_dir, name = args.model_dir, args.model
        if args.train_tiku and {"predict", "api"} & set(args.sections):
            models_dir, name, report["training"] = train_tiku(args.data, scratch, args.overrides)
        for section in args.sections:
            log(f"section {section}")
            try:
                if section == "seg":
                    res, new = seg_section(args.data, args.seg_mb, args.repeats)
                elif section == "predict":
                    res, new = predict_section(models_dir, name, args.data, args.repeats)
                else:
                    in_process = report["sections"].get("predict")
                    in_process = None if in_process is None or "error" in in_process else in_process
                    res, new = api_section(models_dir, name, args.data, args.port, in_process)
            except Exception as exc:  # one failing section must not hide the others
                failed = True
                report["sections"][section] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"section {section} FAILED: {type(exc).__name__}: {exc}")
                continue
            report["sections"][section] = res
            tables += new
            for table in new:
                print(table.markdown(), flush=True)
            failed = failed or api_problems(res) > 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["seconds"] = (datetime.now(UTC) - started).total_seconds()
    report["tables"] = [t.markdown() for t in tables]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"perf-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    load = report["machine"]
    print(
        f"load average {load['loadavg_start'][0]:.2f} at start, {load['loadavg_end'][0]:.2f} at "
        f"end ({load['cpus']} CPUs); {report['seconds']:.0f} s in all; wrote {path}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
