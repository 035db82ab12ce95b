"""A lean HTTP/1.1 load generator: keep-alive connections, requests encoded once, asyncio.

An HTTP client library costs more CPU per request than tagger's server does (httpx: about
1.5 ms), and on 2 shared cores the client then limits what is measured. Here each client
holds one keep-alive connection, writes a request's bytes prepared in advance, and reads
the status line, the headers and ``Content-Length`` bytes of body; nothing else. Answers
are checked for status 200 and, when a request carries several texts, for the number of
results. Uses uvloop when installed.

    from loadgen import Request, drive
    result = drive("127.0.0.1", 8000, [Request.post("/v1/predict", body)], clients=16,
                   seconds=10)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request, encoded once: its bytes and how many texts it carries."""

    raw: bytes
    items: int = 1

    @classmethod
    def make(
        cls, method: str, path: str, body: bytes | None = None, items: int = 1, host: str = "x"
    ) -> Request:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return cls(head.encode() + b"\r\n" + (body or b""), items)


@dataclass
class LoadResult:
    """What a load run measured (latencies in seconds)."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    items: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def record(self, latency: float, error: str, items: int) -> None:
        """Count one answer: an error (first five messages kept) or a success and its time."""
        if error:
            self.errors += 1
            if len(self.messages) < 5:
                self.messages.append(error)
        else:
            self.ok += 1
            self.items += items
            self.latencies.append(latency)


class _Closed(Exception):
    """The server closed the connection."""


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: Request
) -> tuple[int, bytes]:
    """Send one request and read its answer: status code and body."""
    writer.write(req.raw)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head:
        raise _Closed
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


def _check(status: int, body: bytes, req: Request) -> str:
    """An error message, or '' when the answer is what the request expects."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    if req.items > 1:
        try:
            results = json.loads(body).get("results", [])
        except ValueError as exc:
            return f"bad JSON: {exc}"
        if len(results) != req.items:
            return f"{len(results)} results for {req.items} texts"
    return ""


async def _run(
    host: str,
    port: int,
    reqs: list[Request],
    clients: int,
    count: int | None,
    seconds: float | None,
) -> LoadResult:
    result = LoadResult()
    counter = itertools.count()
    deadline = time.perf_counter() + seconds if seconds else float("inf")

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                i = next(counter)
                if (count is not None and i >= count) or time.perf_counter() >= deadline:
                    return
                req = reqs[i % len(reqs)]
                t0 = time.perf_counter()
                try:
                    status, body = await _exchange(reader, writer, req)
                    error = _check(status, body, req)
                except (OSError, asyncio.IncompleteReadError, _Closed, ValueError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                result.record(time.perf_counter() - t0, error, req.items)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall_s = time.perf_counter() - t0
    return result


def drive(
    host: str,
    port: int,
    reqs: list[Request],
    clients: int,
    count: int | None = None,
    seconds: float | None = None,
) -> LoadResult:
    """``clients`` connections sending ``reqs`` round-robin, ``count`` in all or for ``seconds``."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_run(host, port, reqs, clients, count, seconds))
