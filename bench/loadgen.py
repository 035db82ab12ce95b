"""The load generator of the API benchmarks: closed loop, open loop, one response check.

An HTTP client library costs more CPU per request than tagger's server does, and on 2 shared
cores the client would then limit what is measured. Here every request is encoded once in
advance; a connection writes its bytes and reads the status line, the headers and
``Content-Length`` bytes of body, nothing else. Uses uvloop when installed.

* ``closed_loop``: N clients, each on one keep-alive connection, sending the next request as
  soon as an answer is in, for a count or a duration (capacity and latency);
* ``open_loop``: requests start on a fixed schedule of ``rate`` a second whatever the answers
  do, at most ``max_in_flight`` at once, over a pool of keep-alive connections (a soak);
* ``check``: what both call a right answer.

    from bench import loadgen
    reqs = [loadgen.Request.post("/v1/predict", {"text": "..."})]
    result = loadgen.closed_loop("127.0.0.1", 8000, reqs, clients=16, seconds=10)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

# uvicorn closes a keep-alive connection after 5 s idle; one idle this long is not reused,
# so no request is written to a connection the server is closing.
KEEPALIVE_S = 4.0
MAX_MESSAGES = 5

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One request, encoded once: its bytes and how many texts it carries."""

    raw: bytes
    items: int = 1

    @classmethod
    def make(
        cls,
        method: str,
        path: str,
        body: bytes | None = None,
        items: int = 1,
        headers: dict[str, str] | None = None,
    ) -> Request:
        """An HTTP/1.1 request; a body is sent as JSON."""
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return cls(head.encode() + b"\r\n" + (body or b""), items)

    @classmethod
    def post(
        cls, path: str, payload: Any, items: int = 1, headers: dict[str, str] | None = None
    ) -> Request:
        """A POST of ``payload`` as UTF-8 JSON."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls.make("POST", path, body, items, headers)


def check(
    status: int, body: bytes, req: Request, models: Collection[str] = ()
) -> tuple[str, str, str | None]:
    """What is wrong with an answer, as (kind, detail, model named); kind '' when nothing.

    An answer must be HTTP 200. Its body is parsed only when there is more to check, as that
    costs client CPU: for a request of several texts, or when ``models`` are given, it must
    hold one result per text, and with ``models`` name one of them.
    """
    if status != 200:
        return f"HTTP {status}", body[:200].decode(errors="replace"), None
    if req.items == 1 and not models:
        return "", "", None
    try:
        data = json.loads(body)
    except ValueError as exc:
        return "bad JSON", str(exc), None
    if not isinstance(data, dict):
        return "bad JSON", f"not an object: {body[:200]!r}", None
    model = data.get("model")
    if models and model not in models:
        return "unknown model", repr(model), model
    if len(data.get("results") or []) != req.items:
        return "wrong result count", body[:200].decode(errors="replace"), model
    return "", "", model


class _Closed(Exception):
    """The server closed the connection."""


class _Connection:
    """One keep-alive connection and when it last finished an exchange."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.perf_counter()

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def exchange(self, req: Request) -> tuple[int, bytes]:
        """Send one request and read its answer: status code and body."""
        self.writer.write(req.raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head:
            raise _Closed
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def fetch(host: str, port: int, req: Request, timeout_s: float) -> tuple[int, bytes]:
    """One request on a connection of its own: status code and body."""
    async with asyncio.timeout(timeout_s):
        conn = await _Connection.open(host, port)
        try:
            return await conn.exchange(req)
        finally:
            conn.close()


# --- closed loop --------------------------------------------------------------------------
@dataclass
class LoadResult:
    """What a closed-loop run measured (latencies in seconds)."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    items: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def record(self, latency: float, kind: str, detail: str, items: int) -> None:
        """Count one answer: an error (the first messages kept) or a success and its time."""
        if kind:
            self.errors += 1
            if len(self.messages) < MAX_MESSAGES:
                self.messages.append(f"{kind}: {detail}")
        else:
            self.ok += 1
            self.items += items
            self.latencies.append(latency)


async def _closed(
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
        conn = await _Connection.open(host, port)
        try:
            while True:
                i = next(counter)
                if (count is not None and i >= count) or time.perf_counter() >= deadline:
                    return
                req = reqs[i % len(reqs)]
                t0 = time.perf_counter()
                try:
                    status, body = await conn.exchange(req)
                    kind, detail, _ = check(status, body, req)
                except (OSError, asyncio.IncompleteReadError, _Closed, ValueError) as exc:
                    kind, detail = type(exc).__name__, str(exc)
                    conn.close()
                    conn = await _Connection.open(host, port)
                result.record(time.perf_counter() - t0, kind, detail, req.items)
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall_s = time.perf_counter() - t0
    return result


def closed_loop(
    host: str,
    port: int,
    reqs: list[Request],
    clients: int,
    count: int | None = None,
    seconds: float | None = None,
) -> LoadResult:
    """``clients`` connections sending ``reqs`` round-robin, ``count`` in all or for ``seconds``."""
    return run(_closed(host, port, reqs, clients, count, seconds))


# --- open loop ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answer:
    """One request of an open-loop run; times in seconds since the run's start."""

    due: float
    sent: float
    end: float
    kind: str  # '' for a right answer; else check()'s kind or the exception's type name
    detail: str
    model: str | None

    @property
    def ok(self) -> bool:
        return not self.kind


@dataclass
class Paced:
    """What an open-loop run observed."""

    scheduled: int
    answers: list[Answer]  # in the order they finished
    lateness: list[float]  # seconds each request started after its scheduled time
    waited_for_slot: int  # requests that found max_in_flight others running
    max_in_flight: int
    unfinished: int  # still running when the drain time was up, then cancelled
    wall_s: float


async def open_loop(
    host: str,
    port: int,
    reqs: list[Request],
    rate: float,
    count: int,
    *,
    max_in_flight: int,
    timeout_s: float,
    drain_s: float,
    models: Collection[str] = (),
    t0: float | None = None,
) -> Paced:
    """Start ``count`` requests at ``rate`` a second from ``t0`` (now), ``reqs`` round-robin.

    A request that finds ``max_in_flight`` running waits for one to finish, and so starts
    late; answers are checked with ``models`` (see check).
    """
    start = time.perf_counter() if t0 is None else t0
    answers: list[Answer] = []
    lateness: list[float] = []
    pool: list[_Connection] = []  # idle connections, the most recently used last
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    in_flight = most = waited = 0

    async def connection() -> _Connection:
        while pool:
            conn = pool.pop()
            if time.perf_counter() - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.close()
        return await _Connection.open(host, port)

    async def one(req: Request, due: float, sent: float) -> None:
        nonlocal in_flight
        conn = None
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    conn = await connection()
                    status, body = await conn.exchange(req)
                kind, detail, model = check(status, body, req, models)
            except Exception as exc:  # any exception is an error of this request, by type
                kind, detail, model = type(exc).__name__, str(exc) or repr(exc), None
                if conn is not None:
                    conn.close()
                    conn = None
            end = time.perf_counter()
            if conn is not None:
                conn.idle_since = end
                pool.append(conn)
            answers.append(Answer(due - start, sent - start, end - start, kind, detail, model))
        finally:
            in_flight -= 1
            slots.release()

    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if slots.locked():
            waited += 1
        await slots.acquire()
        sent = time.perf_counter()
        lateness.append(sent - due)
        in_flight += 1
        most = max(most, in_flight)
        task = asyncio.create_task(one(reqs[i % len(reqs)], due, sent))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    pending: set[asyncio.Task[None]] = set()
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=drain_s)
        for task in pending:
            task.cancel()
    wall_s = time.perf_counter() - start
    for conn in pool:
        conn.close()
    return Paced(count, answers, lateness, waited, most, len(pending), wall_s)
