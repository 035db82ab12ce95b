"""What GET /metrics's instrumentation costs a request: `tagger serve` (one worker, under the
supervisor, so prometheus-client runs in multiprocess mode) with TAGGER_METRICS on and off,
requests one after another on one keep-alive connection, rounds interleaved.

    python -m bench.metrics_cost [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = "各国应加强学校教育，提高女童入学率。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(models: Path, metrics: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGGER_", "PROMETHEUS"))}
    env |= {"PYTHONPATH": str(ROOT), "TAGGER_METRICS": "true" if metrics else "false"}
    command = [sys.executable, "-m", "training.cli", "serve", "--models-dir", str(models)]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not start")


def ms_per_request(port: int, method: str, path: str, body: bytes | None, n: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"} if body else {}
    for _ in range(50):  # warm
        conn.request(method, path, body, headers)
        conn.getresponse().read()
    started = time.perf_counter()
    for _ in range(n):
        conn.request(method, path, body, headers)
        conn.getresponse().read()
    return (time.perf_counter() - started) / n * 1000


MICRO = """
import asyncio, time
from api.metrics import RequestMetrics
async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
async def nothing(message): pass
async def run(handler, n):
    scope = {"type": "http", "method": "GET", "path": "/healthz"}
    started = time.perf_counter()
    for _ in range(n):
        await handler(dict(scope), None, nothing)
    return (time.perf_counter() - started) / n * 1000
n = 20000
bare = min(asyncio.run(run(app, n)) for _ in range(5))
wrapped = min(asyncio.run(run(RequestMetrics(app), n)) for _ in range(5))
print(f"{bare:.4f} {wrapped:.4f}")
"""


def middleware_ms(multiprocess: bool) -> tuple[float, float]:
    """The middleware alone around an empty ASGI app: (ms bare, ms wrapped), best of 5."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")}
    env["PYTHONPATH"] = str(ROOT)
    if multiprocess:
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-mp-")
    out = subprocess.run([sys.executable, "-c", MICRO], env=env, capture_output=True, text=True)
    bare, wrapped = map(float, out.stdout.split())
    return bare, wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from training.train import train

    models = Path(tempfile.mkdtemp(prefix="bench-metrics-")) / "models"
    train([str(ROOT / "tests" / "data" / "sample")], models)
    body = json.dumps({"text": TEXT}, ensure_ascii=False).encode()
    cases = {
        "GET /healthz": ("GET", "/healthz", None),
        "POST /v1/predict": ("POST", "/v1/predict", body),
    }
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.rounds):
        for on in (False, True):
            proc, port = start(models, on)
            try:
                for name, (method, path, data) in cases.items():
                    ms = ms_per_request(port, method, path, data, args.requests)
                    times.setdefault((name, on), []).append(ms)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    print(
        f"| request | ms without metrics | ms with metrics | cost (ms) |  ({args.rounds} rounds "
        f"x {args.requests} requests, medians)"
    )
    print("|---|---|---|---|")
    for name in cases:
        off, on = statistics.median(times[name, False]), statistics.median(times[name, True])
        print(f"| {name} | {off:.3f} | {on:.3f} | {on - off:+.3f} |")
    print("\n| middleware alone | ms bare | ms wrapped | cost (ms) |\n|---|---|---|---|")
    for mode, mp in (("one process", False), ("multiprocess mode", True)):
        bare, wrapped = middleware_ms(mp)
        print(f"| {mode} | {bare:.4f} | {wrapped:.4f} | {wrapped - bare:+.4f} |")


if __name__ == "__main__":
    main()
