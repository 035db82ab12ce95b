"""Concurrent feedback posts against a live ``tagger serve --workers 2``: nothing lost.

16 clients (threads, one keep-alive connection each) post 500 records each to
``POST /v1/feedback``, never retrying (a retry could store a record twice); then the store
is read back and every record compared with what was sent, field by field. Run for the
SQLite store and for PostgreSQL (a throw-away cluster started here, as the tests do, or
``--postgres URL``)::

    .venv/bin/python -m bench.feedback [--clients 16] [--posts 500] [--postgres URL]

``post_concurrently`` and ``expected`` are what tests/api/test_feedback_live.py runs with
smaller counts. Figures in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def body(client: int, i: int, labels: list[str], model: str) -> dict[str, Any]:
    """The ``i``-th record of ``client``: unique id, text and added tag; two labels."""
    n = len(labels)
    return {
        "id": f"c{client:02d}-{i:04d}",
        "text": f"第{client}号客户的第{i}条反馈：各国应加强学校教育，提高女童入学率。",
        "accepted": [labels[(client + i) % n]],
        "rejected": [labels[(client + i + 1) % n]],
        "added": [f"新标签 {client}-{i}"],
        "model": model,
    }


def expected(clients: int, posts: int, labels: list[str], model: str) -> set[tuple[Any, ...]]:
    """What the store must hold afterwards, as comparable tuples (see ``as_row``)."""
    return {as_row(body(c, i, labels, model)) for c in range(clients) for i in range(posts)}


def as_row(record: Any) -> tuple[Any, ...]:
    """(id, text, accepted, rejected, added, model) of a sent body or a stored record."""
    get = record.get if isinstance(record, dict) else lambda k: getattr(record, k)
    lists = tuple(tuple(get(k)) for k in ("accepted", "rejected", "added"))
    return (get("id"), get("text"), *lists, get("model"))


@dataclass
class Posted:
    seconds: float
    statuses: Counter[int]
    errors: list[str]

    @property
    def rate(self) -> float:
        return sum(self.statuses.values()) / self.seconds if self.seconds else 0.0


def post_concurrently(
    port: int, token: str, clients: int, posts: int, labels: list[str], model: str
) -> Posted:
    """Every client posts its records in order on its own connection, all at once."""
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}

    def run(client: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        for i in range(posts):
            data = json.dumps(body(client, i, labels, model), ensure_ascii=False).encode()
            try:
                conn.request("POST", "/v1/feedback", data, headers)
                response = conn.getresponse()
                answer = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:  # no retry: it could duplicate
                status, answer = 0, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                statuses[status] += 1
                if status != 201 and len(errors) < 20:
                    errors.append(f"{status}: {answer[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return Posted(time.perf_counter() - t0, statuses, errors)


def verify(db: str, want: set[tuple[Any, ...]]) -> tuple[int, int, int]:
    """(records stored, missing, unexpected or duplicated) for the store at ``db``."""
    from classifier.feedback import open_store

    with open_store(db, create=False) as store:
        rows = [as_row(r) for r in store.records()]
        count = store.count()
    got = Counter(rows)
    missing = len(want - set(got))
    extra = sum(n for row, n in got.items() if row not in want) + sum(
        n - 1 for n in got.values() if n > 1
    )
    assert count == len(rows)
    return count, missing, extra


def run_one(kind: str, db: str, clients: int, posts: int, models: Path, ref: str) -> dict:
    from bench import harness

    token = "bench-editor-token"
    env = {"TAGGER_EDITOR_TOKEN": token, "TAGGER_FEEDBACK_DB": db}
    port = _free_port()
    log = models.parent / f"serve-{kind}.log"
    with harness.Server(models, ref, port, 2, log, extra_env=env) as server:
        from classifier.registry import load_model

        labels = list(load_model(models, ref).labels)
        cpu0 = harness.tree_cpu_s(server.pid)
        posted = post_concurrently(port, token, clients, posts, labels, ref)
        server_cpu = harness.tree_cpu_s(server.pid) - cpu0
    count, missing, extra = verify(db, expected(clients, posts, labels, ref))
    return {
        "store": kind,
        "posts": clients * posts,
        "seconds": round(posted.seconds, 2),
        "posts_per_s": round(posted.rate),
        "server_cpu_s": round(server_cpu, 1),
        "statuses": dict(posted.statuses),
        "stored": count,
        "missing": missing,
        "extra": extra,
        "errors": posted.errors[:5],
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--posts", type=int, default=500, help="posts per client")
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a throw-away cluster)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import Cluster, fresh_database, server_bin, wait_ready

    work = Path(tempfile.mkdtemp(prefix="tagger-bench-fb-"))
    models = work / "models"
    ref = _train(models)
    rows = [run_one("sqlite", str(work / "fb.sqlite3"), args.clients, args.posts, models, ref)]
    cluster = None
    if not args.skip_postgres:
        url = args.postgres
        if url is None:
            bindir = server_bin()
            if bindir is None:
                raise SystemExit("no PostgreSQL installed: apt-get install -y postgresql")
            cluster = Cluster(bindir, durable=True)  # fsync on, unlike the tests' cluster
            url = cluster.start()
            wait_ready(url)
            url = fresh_database(url, "bench")
        try:
            rows.append(run_one("postgresql", url, args.clients, args.posts, models, ref))
        finally:
            if cluster is not None:
                cluster.stop()
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    shutil.rmtree(work, ignore_errors=True)


def _train(models: Path) -> str:
    from training.train import train

    result = train([ROOT / "tests" / "data" / "sample"], models, name="default")
    return result.ref


if __name__ == "__main__":
    main()
