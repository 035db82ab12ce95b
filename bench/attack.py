"""Issue 12's attack classes against a live `tagger serve --workers 2`: one table row each.

    python -m bench.attack [--port 8931] [--out bench/out]

Trains a small model on data/sample (bench.harness.train_model), serves it with two workers
and an admin token, and runs every function of ATTACKS in turn. Each returns a Row: what was
sent, the status seen, how long it took, the largest worker RSS while it ran (sampled every
10 ms) and a verdict ("ok" when the service held: the expected answer, in bounded time,
/healthz answered throughout, no worker lost for good). To add a row, write a function
``def attack_name(t: Target) -> Row`` and append it to ATTACKS. Then the attacks on reading
files and on settings, which go through the command line (bench.attack_input), in a second
table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import attack_input, harness, library

NAME = "attack"
TOKEN = "attack-token"
BUDGET_S = 10.0
MB = 1024 * 1024
# The stated bounds of a worker's RSS over what it held before a 4 MB body: while it
# answers, and once it has (tests/api/test_supervisor.py asserts the same)
PEAK_MB, KEPT_MB = 200, 40


@dataclass
class Row:
    attack: str
    status: str
    seconds: float
    verdict: str
    note: str = ""
    rss_mb: float = 0.0
    peaks: dict[int, float] = field(default_factory=dict)  # largest RSS of each worker


@dataclass
class Target:
    """The live server under attack and what an attack needs to reach it."""

    server: harness.Server
    models: Path
    port: int
    scratch: Path
    health_ms: list[float] = field(default_factory=list)
    watch: Watch | None = None  # the watch of the attack running

    def workers(self) -> list[int]:
        return [
            p
            for p in harness.process_tree(self.server.pid)[1:]
            if "resource_tracker" not in harness.cmdline(p)
        ]

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://{harness.HOST}:{self.port}{path}", data=body, method=method
        )
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def predict(self, payload: object, timeout: float = 60.0) -> tuple[int, bytes]:
        body = json.dumps(payload, ensure_ascii=False).encode()
        return self.call("POST", "/v1/predict", body, {"content-type": "application/json"}, timeout)

    def model(self) -> str:
        return json.loads(self.call("GET", "/healthz")[1])["model"]

    def reload(self, ref: str | None = None) -> tuple[int, bytes]:
        body = json.dumps({"model": ref} if ref else {}).encode()
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        return self.call("POST", "/v1/admin/reload", body, headers, timeout=300)


class Watch:
    """While an attack runs: the largest worker RSS, and /healthz's latency (10 Hz)."""

    def __init__(self, t: Target) -> None:
        self.t, self.rss, self.health, self.failed = t, 0.0, [], 0
        self.excused: list[tuple[float, float]] = []  # monotonic windows, failures forgiven
        self.forgiven = 0
        self.peaks: dict[int, float] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._rss), threading.Thread(target=self._health)]

    def __enter__(self) -> Watch:
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for th in self.threads:
            th.join()

    def _rss(self) -> None:
        while not self.stop.is_set():
            for p in self.t.workers():
                self.peaks[p] = max(self.peaks.get(p, 0.0), harness.vm_rss_mb(p))
            self.rss = max([self.rss, *self.peaks.values()])
            time.sleep(0.01)

    def _health(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                ok = self.t.call("GET", "/healthz", timeout=10)[0] == 200
            except OSError:
                ok = False
            self.health.append(time.perf_counter() - t0)
            if not ok and any(a <= t0 <= b for a, b in self.excused):
                self.forgiven += 1
            else:
                self.failed += not ok
            time.sleep(0.1)

    def excuse(self, start: float, end: float) -> None:
        """Forgive failed polls sent from ``start`` to ``end`` (time.perf_counter()): those
        queued on a worker killed on purpose die with it (each worker has its own socket)."""
        self.excused.append((start, end))

    def held(self) -> bool:
        return self.failed == 0 and (not self.health or max(self.health) < 2.0)

    def note(self) -> str:
        worst = max(self.health) * 1e3 if self.health else float("nan")
        lost = f" ({self.forgiven} lost with the killed worker)" if self.forgiven else ""
        return f"/healthz max {worst:.0f} ms, {self.failed} failed{lost}"


def run(t: Target, attack: str, fn: Callable[[], tuple[str, bool, str]]) -> Row:
    """Time ``fn`` (which returns status text, whether it went as it should, a note)."""
    with Watch(t) as watch:
        t.watch = watch
        t0 = time.perf_counter()
        status, good, note = fn()
        seconds = time.perf_counter() - t0
        t.watch = None
    verdict = "ok" if good and watch.held() else "FAIL"
    note = "; ".join(filter(None, [note, watch.note()]))
    return Row(attack, status, seconds, verdict, note, watch.rss, watch.peaks)


# --- 1. super-linear and big texts ---------------------------------------------------------
TEXTS = {
    '"a" + 40,000 spaces + "a"': "a" + " " * 40_000 + "a",
    '"a" + 200,000 spaces + "a"': "a" + " " * 199_998 + "a",
    "ideographic spaces, 200k": "字" + "\u3000" * 199_998 + "字",
    "tabs and newlines, 200k": "字" + "\t\n" * 99_999,
    "punctuation pattern to 200k": ("!?。，、；：" * 30_000)[:200_000],
    "numbered markers to 200k": (" 1. 2. 3." * 25_000)[:200_000],
    "digits to 200k": "1" * 200_000,
    "mixed scripts to 200k": ("中文 English русский العربية 😀 " * 7000)[:200_000],
    "one long word, 200k": "教" * 200_000,
}


def text_attack(label: str, text: str) -> Callable[[Target], Row]:
    def attack(t: Target) -> Row:
        def go() -> tuple[str, bool, str]:
            status, body = t.predict({"text": text}, timeout=BUDGET_S + 30)
            return str(status), status in (200, 503), ""

        row = run(t, f"text: {label}", go)
        if row.seconds > BUDGET_S + 5:
            row.verdict = "FAIL"
        return row

    attack.__name__ = f"text_{label}"
    return attack


def big_batch(t: Target) -> Row:
    texts = ["学校教育，提高女童入学率。改善农村地区的教学条件。\n" * 300] * 150

    def go() -> tuple[str, bool, str]:
        status, _ = t.predict({"texts": texts}, timeout=BUDGET_S + 30)
        return str(status), status in (200, 503), "150 texts of 7,800 chars"

    return run(t, "batch: 150 texts of 7,800 chars (3.5 MB)", go)


def explain_everything(t: Target) -> Row:
    """A 200,000-character text of many paragraphs, explained for 100 tags of each: the
    explanation is stopped at the budget too, between tags, not only between texts."""
    text = "\n".join(["学校教育，提高女童入学率。改善农村地区的教学条件。" * 20] * 400)[:200_000]
    payload = {"text": text, "explain": True, "paragraphs": True, "top_k": 100, "threshold": 0}

    def go() -> tuple[str, bool, str]:
        status, _ = t.predict(payload, timeout=BUDGET_S + 30)
        return str(status), status in (200, 503), "explain + paragraphs, top_k 100"

    row = run(t, "explain: 200k chars, every paragraph, 100 tags", go)
    if row.seconds > BUDGET_S + 5:
        row.verdict = "FAIL"
    return row


def client_disconnects(t: Target) -> Row:
    texts = ["学校教育，提高女童入学率。改善农村地区的教学条件。\n" * 300] * 150
    body = json.dumps({"texts": texts}, ensure_ascii=False).encode()

    def go() -> tuple[str, bool, str]:
        for _ in range(3):  # three big requests abandoned at once
            with socket.create_connection((harness.HOST, t.port)) as s:
                s.sendall(
                    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                time.sleep(0.3)
        t0 = time.perf_counter()
        status, _ = t.predict({"texts": texts[:20]})
        after = time.perf_counter() - t0
        return str(status), status == 200 and after < 5, f"next big request {after:.1f} s"

    return run(t, "client gone: 3 big requests dropped", go)


# --- 2. bodies of any shape ----------------------------------------------------------------
def body_attacks() -> list[Callable[[Target], Row]]:
    size = int(3.9 * MB)
    shapes = {
        "[1,1,…] 3.9 MB": b'{"texts": [' + b",".join([b"1"] * (size // 2)) + b"]}",
        "many keys": b"{" + b",".join(b'"k%d":1' % i for i in range(size // 12)) + b"}",
        "nested arrays": b'{"text": ' + b"[" * (size // 2) + b"]" * (size // 2) + b"}",
        "[[],[],…]": b'{"texts": [' + b",".join([b"[]"] * (size // 3)) + b"]}",
        "strings": b'{"texts": [' + b",".join([b'"ab"'] * (size // 5)) + b"]}",
        "huge integer": b'{"text": "x", "top_k": ' + b"9" * size + b"}",
        "one long key": b'{"' + b"k" * size + b'": 1}',
    }
    out = []
    for label, body in shapes.items():

        def attack(t: Target, label: str = label, body: bytes = body) -> Row:
            before = {p: harness.vm_rss_mb(p) for p in t.workers()}

            def go() -> tuple[str, bool, str]:
                status, answer = t.call(
                    "POST", "/v1/predict", body, {"content-type": "application/json"}
                )
                time.sleep(0.3)
                kept = max(harness.vm_rss_mb(p) - before[p] for p in before)
                good = status == 422 and len(answer) < 4096 and kept < KEPT_MB
                return str(status), good, f"{len(answer)} B answer, RSS after {kept:+.0f} MB"

            row = run(t, f"body: {label}", go)
            grew = max(row.peaks.get(p, 0.0) - before[p] for p in before)
            row.note = f"RSS peak {grew:+.0f} MB, " + row.note
            if grew > PEAK_MB:
                row.verdict = "FAIL"
            return row

        out.append(attack)
    return out


def wrong_content_type(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        status, body = t.call(
            "POST", "/v1/predict", b'{"text": "x"}', {"content-type": "text/plain"}
        )
        return str(status), status == 415 and b"text/plain" in body, ""

    return run(t, "content type text/plain", go)


# --- slow clients ---------------------------------------------------------------------------
def slow_headers(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        with socket.create_connection((harness.HOST, t.port), timeout=30) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            t0 = time.perf_counter()
            try:
                while time.perf_counter() - t0 < 30:
                    s.sendall(b"X-slow: 1\r\n")
                    time.sleep(1.0)
                closed = False
            except OSError:
                closed = True
        return "closed" if closed else "open", closed, f"after {time.perf_counter() - t0:.0f} s"

    return run(t, "headers trickled 1 line/s", go)


def slow_body(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        with socket.create_connection((harness.HOST, t.port), timeout=30) as s:
            s.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 100000\r\n\r\n{"
            )
            s.settimeout(1.0)
            answer = b""
            t0 = time.perf_counter()
            while not answer and time.perf_counter() - t0 < 60:
                try:
                    s.sendall(b" ")
                    answer = s.recv(200)
                except TimeoutError:
                    continue
                except OSError:
                    break
        status = answer.split(b" ")[1].decode() if answer.count(b" ") else "closed"
        return status, status == "408", f"after {time.perf_counter() - t0:.0f} s"

    return run(t, "body trickled 1 byte/s", go)


# --- 4. admin -------------------------------------------------------------------------------
def admin_without_token(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        seen = []
        for headers in ({}, {"authorization": "Bearer "}, {"authorization": "Bearer wrong"}):
            status, _ = t.call(
                "POST",
                "/v1/admin/reload",
                b"[" * 100_000,
                {**headers, "content-type": "application/json"},
            )
            seen.append(status)
        return "/".join(map(str, seen)), set(seen) == {401}, "garbage body, checked before it"

    return run(t, "admin without/with empty/wrong token", go)


def public_paths(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        texts = [t.call("GET", p)[1].decode() for p in ("/v1/model", "/healthz", "/v1/labels")]
        leaked = [s for s in texts if str(t.scratch) in s or str(harness.ROOT) in s]
        return "200", not leaked, "no absolute path in /v1/model, /healthz, /v1/labels"

    return run(t, "paths in public answers", go)


# --- 3. the supervisor ----------------------------------------------------------------------
def new_version(t: Target, source: str) -> str:
    return library.save_copy(t.models, source)


def reload_storm(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        first = t.model()
        second = new_version(t, first)
        statuses: list[int] = []
        failures = [0]
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                failures[0] += t.predict({"text": "学校教育"})[0] != 200

        clients = [threading.Thread(target=load) for _ in range(4)]
        for c in clients:
            c.start()
        storm = [
            threading.Thread(target=lambda r=r: statuses.append(t.reload(r)[0]))
            for r in [second, first] * 5
        ]
        for s in storm:
            s.start()
        for s in storm:
            s.join()
        stop.set()
        for c in clients:
            c.join()
        final = {t.model() for _ in range(30)}
        good = failures[0] == 0 and len(final) == 1 and set(statuses) <= {200, 409}
        return (
            f"{statuses.count(200)}x200 {statuses.count(409)}x409",
            good,
            (
                f"10 concurrent reloads; {failures[0]} failed predictions; "
                f"workers on {len(final)} version"
            ),
        )

    return run(t, "reload storm under load", go)


def killed_worker(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        pinned = t.model()
        new_version(t, pinned)  # a newer latest the restarted worker must not take
        victim = t.workers()[0]
        killed = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 60
        while time.time() < deadline and victim in t.workers():
            time.sleep(0.05)
        assert t.watch is not None
        t.watch.excuse(killed - 0.2, time.perf_counter())  # a poll takes ~ms; 0.2 s before
        while time.time() < deadline and len(t.workers()) < 2:
            time.sleep(0.2)
        time.sleep(3)
        models = {t.model() for _ in range(30)}
        return "restarted", models == {pinned}, f"every worker on {pinned.split('@')[1][:15]}"

    return run(t, "worker killed (SIGKILL)", go)


def second_serve(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        command = library.cli_command() + [
            "serve", "--models-dir", str(t.models), "--port", str(t.port), "--host", harness.HOST,
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=harness.ROOT
        )
        said = (done.stderr.strip().splitlines() or [""])[-1][:80]
        good = done.returncode != 0 and "serving" not in done.stderr
        return f"exit {done.returncode}", good, said

    return run(t, "second tagger serve on the port", go)


def tampered_metadata(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        before = t.model()
        ref = new_version(t, before)
        meta = t.models / "default" / ref.split("@")[1] / "metadata.json"
        data = json.loads(meta.read_text())
        del data["name"]
        meta.write_text(json.dumps(data))
        status, body = t.reload(ref)
        good = status == 409 and t.model() == before
        return str(status), good, json.loads(body)["detail"][-60:]

    return run(t, "metadata without 'name'", go)


def symlinked_file(t: Target) -> Row:
    def go() -> tuple[str, bool, str]:
        before = t.model()
        ref = new_version(t, before)
        folder = t.models / "default" / ref.split("@")[1]
        outside = t.scratch / "outside-model.json"
        shutil.move(folder / "model.json", outside)
        os.symlink(outside, folder / "model.json")
        status, _ = t.reload(ref)
        return str(status), status in (404, 409) and t.model() == before, "model.json -> outside"

    return run(t, "model file symlinked outside", go)


ATTACKS: list[Callable[[Target], Row]] = [
    *(text_attack(label, text) for label, text in TEXTS.items()),
    big_batch,
    explain_everything,
    client_disconnects,
    *body_attacks(),
    wrong_content_type,
    slow_headers,
    slow_body,
    admin_without_token,
    public_paths,
    reload_storm,
    killed_worker,
    second_serve,
    tampered_metadata,
    symlinked_file,
]


def main() -> None:
    parser = harness.arguments(NAME, __doc__, data=False)
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()
    log = harness.logger(NAME)
    report = harness.Report(NAME, args.out)
    scratch = Path(tempfile.mkdtemp(prefix="tagger-attack-"))
    try:
        models, _ = harness.train_model(harness.ROOT / "data" / "sample", scratch, "default")
        env = {
            "TAGGER_ADMIN_TOKEN": TOKEN,
            "TAGGER_REQUEST_BUDGET_S": str(BUDGET_S),
            "TAGGER_HEADER_TIMEOUT_S": "5",
            "TAGGER_BODY_TIMEOUT_S": "5",
        }
        with harness.Server(models, "default", args.port, 2, scratch / "serve.log", env) as server:
            t = Target(server, models, args.port, scratch)
            idle = max(harness.vm_rss_mb(p) for p in t.workers())
            table = harness.Table(
                "Attacks on tagger serve --workers 2 (data/sample model)",
                ["attack", "status", "time s", "worker RSS MB", "verdict", "note"],
            )
            for attack in ATTACKS:
                log(attack.__name__)
                try:
                    row = attack(t)
                except Exception as exc:  # an attack that breaks the harness is a failed row
                    row = Row(attack.__name__, "error", 0.0, "FAIL", f"{type(exc).__name__}: {exc}")
                table.rows.append(
                    [row.attack, row.status, harness.fmt(row.seconds), harness.fmt(row.rss_mb, 0),
                     row.verdict, row.note.replace("|", "/")]
                )  # fmt: skip
            table.notes.append(
                f"worker RSS idle {idle:.0f} MB; request budget {BUDGET_S:g} s, header and body "
                "timeouts 5 s; /healthz polled at 10 Hz during every attack"
            )
            report.end()
            table.notes.append(report.load_line())
            report.show(table)
        # the attacks on reading files and on settings go through the command line
        inputs = attack_input.run_attacks(attack_input.ATTACKS)
        report.show(inputs)
        report.data["rows"] = table.rows
        report.data["input_rows"] = inputs.rows
        log(f"wrote {report.write()}")
        failed_inputs = any(r[-1].startswith("FAIL") for r in inputs.rows)
        if any(r[4] != "ok" for r in table.rows) or failed_inputs:
            sys.exit(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
