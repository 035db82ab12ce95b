"""Two models in one service against one each: worker memory and one-paragraph latency.

    python -m bench.multimodel [--models tiku fudan] [--models-dir M] [--requests 300]
                               [--port 8130]

Without ``--models-dir`` a model is trained on each named corpus's ``train/``
(``../shared/data``) into a scratch folder first, named after the corpus. Then, in one run,
three ``tagger serve --workers 1`` at once: A alone, B alone, and A and B together (A the
default). The RSS of each one's worker once it is ready (every model loaded, the segmenter
warm) and again after the requests; then ``--requests`` rounds, each posting one paragraph
(the start of a test document of that model's corpus, at most ``--chars``) to A alone, to the
pair with ``"model": A``, to B alone and to the pair with ``"model": B`` (each alone server
twice, so that every server answers two requests a round), the order rotated
each round, one request at a time, each on a new connection. Latencies are p50 and p90 per
column; the ratio is the median of the per-round ratios (pair / alone), which holds when the
machine's speed drifts.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.harness import (
    HOST,
    Report,
    Server,
    Table,
    arguments,
    first_texts,
    fmt,
    logger,
    med,
    pct,
    process_tree,
    rotated,
    train_model,
    vm_rss_mb,
)

log = logger("multimodel")


def workers_rss_mb(server: Server) -> list[float]:
    """VmRSS of each of the server's workers (the supervisor's children that are not
    multiprocessing's resource tracker)."""
    from bench.harness import cmdline

    workers = [
        pid
        for pid in process_tree(server.pid)[1:]
        if "resource_tracker" not in cmdline(pid) and "spawn_main" in cmdline(pid)
    ]
    return [vm_rss_mb(pid) for pid in workers]


def worker_rss_mb(server: Server) -> float:
    """VmRSS of the server's one worker."""
    rss = workers_rss_mb(server)
    if len(rss) != 1:
        raise RuntimeError(f"expected one worker under {server.pid}, found {len(rss)}")
    return rss[0]


def folder_mb(models_dir: Path, name: str) -> float:
    """Size of the files of the version ``name`` serves (``latest``)."""
    from classifier.registry import resolve

    return sum(f.stat().st_size for f in resolve(models_dir, name).iterdir()) / 1e6


def paragraphs(corpus: Path, n: int, chars: int) -> list[str]:
    """The first ``chars`` characters of the first ``n`` test documents of a corpus."""
    return [t[:chars] for t in first_texts(corpus / "test", n)]


def post_s(port: int, req: loadgen.Request, want: str) -> float:
    """Seconds for one request on a new connection; it must be answered by model ``want``."""
    t0 = time.perf_counter()
    status, body = asyncio.run(loadgen.fetch(HOST, port, req, 30.0))
    took = time.perf_counter() - t0
    model = json.loads(body).get("model", "") if status == 200 else ""
    if not model.startswith(f"{want}@"):
        raise RuntimeError(f"port {port}: {status} from {model or body[:200]!r}, not {want}")
    return took


def per_round(times: list[list[float]], k: int) -> list[tuple[float, float, float]]:
    """Each round's time of the pair's column ``k`` with the two of the alone column before."""
    alone = times[k - 1]
    return [(x, alone[2 * i], alone[2 * i + 1]) for i, x in enumerate(times[k])]


def main() -> int:
    parser = arguments("multimodel", __doc__, data=True)
    parser.add_argument("--models", nargs=2, default=["tiku", "fudan"], metavar=("A", "B"))
    parser.add_argument("--models-dir", type=Path, help="trained models named A and B")
    parser.add_argument(
        "--texts", nargs=2, metavar=("A", "B"), help="corpora of the paragraphs (default: --models)"
    )
    parser.add_argument("--requests", type=int, default=300, help="rounds of six requests")
    parser.add_argument("--chars", type=int, default=400, help="characters of a paragraph")
    parser.add_argument("--port", type=int, default=8130, help="first of three ports")
    args = parser.parse_args()
    a, b = args.models
    scratch = Path(tempfile.mkdtemp(prefix="bench-multimodel-"))
    report = Report("multimodel", args.out, models=[a, b], requests=args.requests)
    models_dir = args.models_dir
    if models_dir is None:
        for name in (a, b):
            models_dir, timing = train_model(args.data / name / "train", scratch, name, jobs=2)
            report.data.setdefault("training", {})[name] = timing
        log(f"models in {models_dir} (give it as --models-dir to measure again)")
    corpora = dict(zip((a, b), args.texts or (a, b), strict=True))
    texts = {m: paragraphs(args.data / c, args.requests, args.chars) for m, c in corpora.items()}
    servers = {
        "A alone": Server(models_dir, a, args.port, 1, scratch / "a.log"),
        "B alone": Server(models_dir, b, args.port + 1, 1, scratch / "b.log"),
        "A+B": Server(models_dir, a, args.port + 2, 1, scratch / "ab.log"),
    }
    servers["A+B"].command += ["--model", b]  # the second model, served beside the default
    columns = [("A alone", a, None), ("A+B", a, a), ("B alone", b, None), ("A+B", b, b)]
    # Each server gets two requests a round (an alone server its model's paragraph twice):
    # a worker that answers more often waits less between requests and, on a loaded
    # machine, answered faster for it (pair / alone 0.75-0.95 with one request a round).
    turns = [0, 0, 1, 2, 2, 3]
    times: list[list[float]] = [[] for _ in columns]
    rss: dict[str, dict[str, float]] = {}
    with servers["A alone"], servers["B alone"], servers["A+B"]:
        for label, server in servers.items():
            rss[label] = {"ready": worker_rss_mb(server), "startup_s": server.startup_s}
        shown = ", ".join(f"{k} {v['ready']:.0f} MB" for k, v in rss.items())
        log(f"ready; worker RSS {shown}")
        for i in range(args.requests):
            for k in rotated(turns, i):
                label, want, name = columns[k]
                body: dict[str, Any] = {"text": texts[want][i % len(texts[want])]}
                if name is not None:
                    body["model"] = name
                req = loadgen.Request.post("/v1/predict", body)
                times[k].append(post_s(servers[label].port, req, want))
        for label, server in servers.items():
            rss[label]["after"] = worker_rss_mb(server)
    report.end()
    report.data.update(rss_mb=rss, latencies_s=times)
    memory = Table(
        f"worker RSS, MB (`tagger serve --workers 1`; A = {a}, B = {b})",
        ["server", "ready", f"after {6 * args.requests} requests", "start-up s"],
    )
    for label, row in rss.items():
        memory.rows.append([label, fmt(row["ready"], 0), fmt(row["after"], 0)])
        memory.rows[-1].append(fmt(row["startup_s"], 1))
    extra = rss["A+B"]["after"] - rss["A alone"]["after"]
    memory.notes.append(
        f"A+B - A alone: {extra:+.0f} MB, what serving B beside A costs a worker "
        f"(B alone - A alone: {rss['B alone']['after'] - rss['A alone']['after']:+.0f} MB)"
    )
    sizes = {m: folder_mb(models_dir, m) for m in (a, b)}
    report.data["model_files_mb"] = sizes
    memory.notes.append(
        "model files (the version served): "
        + ", ".join(f"{m} {v:.1f} MB" for m, v in sizes.items())
    )
    latency = Table(
        f"one paragraph (at most {args.chars} characters), ms, {args.requests} rounds interleaved",
        ["model", "server", "p50", "p90", "pair / alone (median of rounds)"],
    )
    for k, (label, want, _) in enumerate(columns):
        ratio = (
            ""
            if label != "A+B"
            else fmt(med([x / (y1 + y2) * 2 for x, y1, y2 in per_round(times, k)]), 3)
        )
        latency.rows.append(
            [want, label, fmt(med(times[k]) * 1e3), fmt(pct(times[k], 90) * 1e3), ratio]
        )
    latency.notes.append(report.load_line())
    report.show(memory)
    report.show(latency)
    print(f"wrote {report.write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
