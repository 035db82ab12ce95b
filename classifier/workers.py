"""Run an ASGI application with uvicorn in supervised worker processes, a listening socket
each, every worker on the same model version. The application is named by an import string
(``module:factory``), so the command line that starts the service never imports it.

uvicorn's own ``--workers`` shares one listening socket between the workers, and which
worker accepts a burst of keep-alive connections is up to the scheduler: with 16 clients and
two workers, two quiet benchmark runs of three put every connection on one worker. On Linux,
each worker here binds its own socket with ``SO_REUSEPORT`` instead, and the kernel spreads
incoming connections over the sockets by hash. Elsewhere ``--workers`` falls back to
uvicorn's own (and a reload reaches one worker).

The supervisor (also for one worker):

* holds an exclusive lock on ``host:port`` (a Linux abstract unix socket, gone with the
  process) and probes the port, so a second ``tagger serve`` or any other program already
  there is an error before anything says "serving": ``SO_REUSEPORT`` alone would let a
  second service of the same user silently share the port;
* pins the model version (``NAME@VERSION``), or one version of each of several models
  (distinct names), and starts every worker on them, restarted ones too; ``current().models``
  are those versions inside a worker (``current().model`` the first);
* restarts a worker that dies, and retries one that cannot start with back-off (0.5 s
  doubling to 30 s) while the others keep serving; only when no worker ever started does it
  give up. A worker socket listens only once its application has started, so no connection
  waits on a worker that is still loading or that fails;
* kills and restarts a worker whose event loop has not ticked for ``stall_s`` (a request
  stuck in one step that nothing can interrupt);
* runs reloads in two phases over every worker: each loads and verifies the version
  (``Participant.prepare``), then all swap (``commit``) or, if any failed, all discard
  (``abort``); the answer comes when all have swapped, and the pin moves to the new version.
  A reload names one version, and swaps the model of that name (``target``) only, the
  others serving on untouched;
* with ``follow`` (a function naming the version that should be served, polled every
  ``FOLLOW_S``; one per model, or None for a pinned one), runs that same reload itself
  whenever the version it names changes: a promotion in the registry reaches every worker.
  A reload asked for by hand in between stands until the followed version changes again;
* gives the workers one folder for their metrics (``PROMETHEUS_MULTIPROC_DIR``, a new
  temporary one unless it is set), so that ``/metrics`` on any worker sums them all; the
  gauges of a worker that ends are dropped, and the folder is removed at the end;
* stops the workers gracefully on SIGINT/SIGTERM; a worker whose supervisor is gone stops.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Protocol

from classifier.errors import ClassifierError

LOG_LEVEL = "warning"
BACKLOG = 2048
# uvicorn's exit status when the application fails to start (e.g. no loadable model)
STARTUP_FAILURE = 3
STOP_TIMEOUT_S = 10.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0  # a worker up this long that dies is restarted at once, its back-off reset
STALL_S = 120.0  # default: the event loop of a ready worker ticks every 0.1 s
PREPARE_TIMEOUT_S = 300.0  # for every worker to load and verify a version
COMMIT_TIMEOUT_S = 30.0
START_WAIT_S = 120.0  # a reload first waits for workers that are starting
FOLLOW_S = 1.0  # how often ``follow`` is asked which version should be served
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess mode
# what names the version to serve: one function, or one (or None) per model served
Follow = Callable[[], str | None] | Sequence[Callable[[], str | None] | None] | None


def _say(message: str) -> None:
    """The supervisor's own messages, on standard error (no logging is configured here)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class ServeError(ClassifierError):
    """The server could not start: a message for the user, in one line."""


def model_name(ref: str) -> str:
    """The NAME of ``NAME@VERSION``."""
    return ref.partition("@")[0]


def target(served: Sequence[str], ref: str) -> int | None:
    """Which of the ``served`` models (refs or names, in order) a reload to ``ref`` swaps:
    the one of the same name; with one model served, that one whatever its name (a reload
    may move a one-model service to another name, as it always could); else None."""
    names = [model_name(r) for r in served]
    if model_name(ref) in names:
        return names.index(model_name(ref))
    return 0 if len(names) == 1 else None


def not_served(served: Sequence[str], name: str) -> str:
    """The message refusing a model name that is not served here."""
    names = ", ".join(model_name(r) for r in served)
    return f"model {name!r} is not served here; served: {names}"


def reuse_port_supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, listen: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (and listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if listen:
        sock.listen(BACKLOG)
    return sock


# --- the port: one tagger serve a host:port -----------------------------------------------
def port_lock(host: str, port: int) -> socket.socket:
    """An exclusive lock on ``host:port`` for this process's lifetime: a Linux abstract unix
    socket (no file; released when the process ends, however it ends)."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0tagger-serve:{host}:{port}")
    except OSError as exc:
        lock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"cannot listen on {host}:{port}: already in use by another tagger serve"
            ) from None
        raise
    return lock


def _probe_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def check_port_free(host: str, port: int) -> None:
    """Raise ServeError if anything accepts connections on ``host:port`` or holds it.

    The connect() probe finds a listener that shares the port (``SO_REUSEPORT``, as this
    module's own workers do); the bind probe one that does not. The probe socket never
    listens, so it never joins the group of sockets the kernel hands connections to.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((_probe_host(host), port)) == 0:
            raise ServeError(
                f"cannot listen on {host}:{port}: another server accepts connections there"
            )
    listening_socket(host, port, listen=False).close()


# --- inside a worker ----------------------------------------------------------------------
class Participant(Protocol):
    """What an application does in a reload of every worker (two phases)."""

    def prepare(self, ref: str) -> None:
        """Load and verify version ``ref``, keep it aside; raise to refuse it."""

    def commit(self) -> None:
        """Serve the version prepared."""

    def abort(self) -> None:
        """Discard the version prepared."""


@dataclass(frozen=True)
class ReloadResult:
    """How a reload of every worker ended: ``failed`` maps a worker's pid to its reason."""

    model: str
    workers: int
    failed: dict[int, str] = field(default_factory=dict)
    busy: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.busy

    def reason(self) -> str:
        if self.busy:
            return "another reload is in progress"
        return "; ".join(f"worker {pid}: {why}" for pid, why in sorted(self.failed.items()))


class WorkerLink:
    """A worker's end of its pipe to the supervisor: the pinned versions, reloads."""

    def __init__(self, conn: Connection, models: str | Sequence[str]) -> None:
        self.conn = conn
        self.models = [models] if isinstance(models, str) else list(models)
        self._send_lock = threading.Lock()
        self._replies: dict[int, Any] = {}
        self._answered = threading.Condition()
        self._ids = itertools.count()
        self._participant: Participant | None = None
        self.on_lost: Callable[[], None] = lambda: None

    @property
    def model(self) -> str:
        """The first (default) model's pinned version."""
        return self.models[0]

    def start(self) -> None:
        threading.Thread(target=self._run, name="tagger-supervisor-link", daemon=True).start()

    def serve(self, participant: Participant) -> None:
        """Take part in reloads from now on (called once the application has its model)."""
        self._participant = participant

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self.conn.send(message)

    def reload(
        self, ref: str, timeout_s: float = PREPARE_TIMEOUT_S + 2 * COMMIT_TIMEOUT_S
    ) -> ReloadResult:
        """Ask the supervisor to move every worker to ``ref``; its answer when all are done."""
        request = next(self._ids)
        self.send(("reload", request, ref))
        with self._answered:
            if not self._answered.wait_for(lambda: request in self._replies, timeout_s):
                raise ServeError("the supervisor did not answer the reload in time")
            result: ReloadResult = self._replies.pop(request)
        return result

    def _run(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.on_lost()  # the supervisor is gone: stop serving
                return
            kind, ident, *rest = message
            if kind == "reply":
                with self._answered:
                    self._replies[ident] = rest[0]
                    self._answered.notify_all()
                continue
            error = None
            try:
                participant = self._participant
                if participant is None:
                    raise ServeError("the application has not started")
                if kind == "prepare":
                    participant.prepare(rest[0])
                elif kind == "commit":
                    participant.commit()
                elif kind == "abort":
                    participant.abort()
            except Exception as exc:  # any failure refuses the version, in one line
                error = str(exc) or type(exc).__name__
            with contextlib.suppress(OSError):
                self.send(("done", ident, error))


_LINK: WorkerLink | None = None


def current() -> WorkerLink | None:
    """The link to the supervisor in a supervised worker process (None elsewhere)."""
    return _LINK


class _HeaderDeadline:
    """Mixin of a uvicorn HTTP protocol: close a connection that has not sent a request's
    headers ``header_timeout_s`` after it opened or after its previous answer (uvicorn
    itself times out only idle keep-alive connections, not one that trickles headers)."""

    header_timeout_s = 10.0
    _header_timer: Any = None
    cycle: Any
    loop: Any
    transport: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if not self._awaiting_headers():
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self._awaiting_headers():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.transport.close()


def http_protocol(header_timeout_s: float) -> type:
    """uvicorn's HTTP protocol (httptools, else h11) with a deadline on request headers."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools is optional
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return type(
        "HeaderDeadlineProtocol", (_HeaderDeadline, base), {"header_timeout_s": header_timeout_s}
    )


def _worker(app: str, host: str, port: int, models: list[str], conn: Connection, beat: Any) -> None:
    """One worker process: the application, then its own socket, one uvicorn server."""
    global _LINK
    import uvicorn
    from uvicorn.importer import import_from_string

    link = _LINK = WorkerLink(conn, models)
    link.start()
    application = import_from_string(app)()
    options = getattr(getattr(application, "state", None), "server_options", None) or {}
    config = uvicorn.Config(
        application,
        log_level=LOG_LEVEL,
        http=http_protocol(float(options.get("header_timeout_s", 10.0))),  # type: ignore[arg-type]
    )

    class Worker(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and not self.should_exit:
                beat.value = time.monotonic()
                link.send(("ready", os.getpid(), float(options.get("stall_s", STALL_S))))

        async def on_tick(self, counter: int) -> bool:
            beat.value = time.monotonic()
            return await super().on_tick(counter)

    server = Worker(config)

    def lost() -> None:
        server.should_exit = True

    link.on_lost = lost
    # bound now, listening once the application has started (asyncio listens on it then)
    sock = listening_socket(host, port, listen=False)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


# --- the supervisor -----------------------------------------------------------------------
def serve(
    app: str,
    host: str,
    port: int,
    workers: int = 1,
    model: str | Sequence[str] = "",
    announce: Callable[[str], None] = _say,
    follow: Follow = None,
) -> None:
    """Serve the application factory ``app`` on version ``model`` (or on each of several
    models' versions) until interrupted, and move every worker to the version ``follow()``
    names whenever that changes (with several models, one ``follow`` or None for each).

    Raise ServeError before anything is started if the port is taken (by a tagger or any
    other program), or when no worker can start; ``announce`` gets one line once the first
    worker answers.
    """
    import uvicorn

    if not reuse_port_supported():
        shown = model if isinstance(model, str) else ", ".join(model)
        announce(f"serving {shown} on http://{host}:{port}")
        uvicorn.run(app, factory=True, host=host, port=port, workers=workers, log_level=LOG_LEVEL)
        return
    # glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps
    # what they free: under concurrent batch requests a worker's RSS rose from 223 to 288 MB.
    # Two arenas bound it (219-228 MB) and were faster too (9,186 against 7,678 texts/s with
    # 8 batch clients on 2 workers). Workers are new processes, so they read it at start.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    lock = port_lock(host, port)
    own_metrics = not os.environ.get(METRICS_DIR_ENV)
    if own_metrics:  # workers are new processes: they read it when they import the library
        os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="tagger-metrics-")
    try:
        check_port_free(host, port)
        Supervisor(app, host, port, workers, model, announce, follow).run()
    finally:
        lock.close()
        if own_metrics:
            shutil.rmtree(os.environ.pop(METRICS_DIR_ENV), ignore_errors=True)


def _metrics_gone(pid: int) -> None:
    """Drop the live-worker gauges of a worker that ended (its counters stay in the sums)."""
    if os.environ.get(METRICS_DIR_ENV) and pid:
        try:
            from prometheus_client import multiprocess
        except ImportError:
            return
        multiprocess.mark_process_dead(pid)


@dataclass
class _Slot:
    """One worker place: its process (None while waiting to restart) and state."""

    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    beat: Any = None
    state: str = "waiting"  # waiting | starting | ready
    ready_at: float = 0.0
    failures: int = 0
    retry_at: float = 0.0
    stall_s: float = STALL_S
    ever_ready: bool = False
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None and self.process.pid else 0

    def send(self, message: tuple[Any, ...]) -> bool:
        if self.conn is None:
            return False
        try:
            with self.send_lock:
                self.conn.send(message)
        except OSError:
            return False
        return True


class Supervisor:
    """Worker processes on pinned versions (one per model served): started, watched,
    restarted, reloaded."""

    def __init__(
        self,
        app: str,
        host: str,
        port: int,
        workers: int,
        model: str | Sequence[str],
        announce: Callable[[str], None] = _say,
        follow: Follow = None,
    ) -> None:
        self.app, self.host, self.port = app, host, port
        self.models = [model] if isinstance(model, str) else list(model)
        self.announce = announce
        follows = follow if isinstance(follow, Sequence) else [follow]
        self.follows = list(follows) + [None] * (len(self.models) - len(follows))
        # per model, the last version follow named: the first answer is the pin, or newer
        self.followed: list[str | None] = [None] * len(self.models)
        self.follow_at = 0.0
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot(i) for i in range(workers)]
        self.state = threading.Condition()  # guards slot states, replies, reloading
        self.replies: dict[int, str | None] = {}
        self.ids = itertools.count()
        self.reloading = False
        self.stopping = False
        self.announced = False

    @property
    def model(self) -> str:
        """The first (default) model's pinned version."""
        return self.models[0]

    @model.setter
    def model(self, ref: str) -> None:
        self.models[0] = ref

    # --- processes ------------------------------------------------------------------------
    def start(self, slot: _Slot) -> None:
        mine, theirs = self.context.Pipe(duplex=True)
        beat = self.context.Value("d", 0.0, lock=False)
        process = self.context.Process(
            target=_worker,
            args=(self.app, self.host, self.port, list(self.models), theirs, beat),
            daemon=False,
        )
        process.start()
        theirs.close()
        slot.process, slot.conn, slot.beat, slot.state = process, mine, beat, "starting"

    def exited(self, slot: _Slot, now: float) -> None:
        """A worker process ended: restart it now, or after its back-off."""
        assert slot.process is not None
        pid, code, was = slot.process.pid, slot.process.exitcode, slot.state
        if slot.conn is not None:
            slot.conn.close()
        _metrics_gone(pid or 0)
        slot.process, slot.conn, slot.state = None, None, "waiting"
        if was == "ready" and now - slot.ready_at >= STABLE_S:
            slot.failures, slot.retry_at = 0, now
            _say(f"worker {pid} exited with status {code}; restarting it")
            return
        slot.failures += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (slot.failures - 1))
        slot.retry_at = now + (delay if slot.failures > 1 or was != "ready" else 0.0)
        what = "could not start" if was == "starting" else f"exited with status {code}"
        _say(f"worker {pid} {what}; restarting it in {slot.retry_at - now:.1f} s")
        if not any(s.ever_ready for s in self.slots) and all(
            s.state == "waiting" and s.failures for s in self.slots
        ):
            raise ServeError("no worker could start the application (its log is above)")

    def stalled(self, slot: _Slot, now: float) -> bool:
        return slot.state == "ready" and now - slot.beat.value > slot.stall_s

    # --- messages -------------------------------------------------------------------------
    def receive(self, slot: _Slot) -> None:
        assert slot.conn is not None
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            return  # the process is ending; its sentinel tells when
        kind = message[0]
        with self.state:
            if kind == "ready":
                _, pid, stall_s = message
                slot.state, slot.ready_at, slot.stall_s = "ready", time.monotonic(), stall_s
                slot.ever_ready = True
                self.state.notify_all()
            elif kind == "done":
                self.replies[message[1]] = message[2]
                self.state.notify_all()
            elif kind == "reload":
                _, request, ref = message
                if self.reloading:
                    slot.send(("reply", request, ReloadResult(ref, 0, busy=True)))
                else:
                    self.reloading = True
                    threading.Thread(
                        target=self.reload, args=(slot, request, ref), daemon=True
                    ).start()
        if kind == "ready" and not self.announced:
            self.announced = True
            n = len(self.slots)
            self.announce(
                f"serving {', '.join(self.models)} on http://{self.host}:{self.port} "
                f"({n} worker{'s' if n > 1 else ''})"
            )

    # --- reloads (in a thread of their own; the main loop goes on) -------------------------
    def _ask(
        self, slots: list[_Slot], make: Callable[[int], tuple[Any, ...]]
    ) -> dict[int, tuple[_Slot, int]]:
        """Send each worker a message made with a new id: id -> (slot, pid) of those sent."""
        asked = {}
        for slot in slots:
            ident, pid = next(self.ids), slot.pid
            if slot.send(make(ident)):
                asked[ident] = (slot, pid)
        return asked

    def _collect(
        self, asked: dict[int, tuple[_Slot, int]], timeout_s: float
    ) -> dict[int, str | None]:
        """Each asked worker's answer by pid: None for done, else why not."""
        deadline = time.monotonic() + timeout_s

        def settled() -> bool:
            return all(i in self.replies or s.pid != pid for i, (s, pid) in asked.items())

        with self.state:
            while not settled() and time.monotonic() < deadline:
                self.state.wait(0.1)
            return {
                pid: self.replies.pop(i) if i in self.replies else "exited or did not answer"
                for i, (_, pid) in asked.items()
            }

    def reload(self, requester: _Slot | None, request: int, ref: str) -> None:
        """Move every ready worker to ``ref`` in two phases; answer ``requester`` (a worker
        that asked), or say how it went when the supervisor itself asked (``follow``)."""
        result = ReloadResult(ref, 0, {0: "the reload did not run"})
        which = target(self.models, ref)
        try:
            if which is None:
                result = ReloadResult(ref, 0, {0: not_served(self.models, model_name(ref))})
                return
            with self.state:
                self.state.wait_for(
                    lambda: not any(s.state == "starting" for s in self.slots), START_WAIT_S
                )
                members = [s for s in self.slots if s.state == "ready"]
            asked = self._ask(members, lambda i: ("prepare", i, ref))
            prepared = self._collect(asked, PREPARE_TIMEOUT_S)
            failed = {pid: why for pid, why in prepared.items() if why is not None}
            if len(prepared) < len(members):
                failed[0] = "a worker could not be asked"
            if failed:
                ready = [s for s in members if prepared.get(s.pid, "") is None]
                self._collect(self._ask(ready, lambda i: ("abort", i)), COMMIT_TIMEOUT_S)
                result = ReloadResult(ref, len(members), failed)
            else:
                self.models[which] = ref  # a worker started from now on loads it
                asked = self._ask(members, lambda i: ("commit", i))
                committed = self._collect(asked, COMMIT_TIMEOUT_S)
                lost = {pid: why for pid, why in committed.items() if why is not None}
                for pid, why in lost.items():
                    _say(f"worker {pid} did not swap ({why}); it restarts on {ref}")
                result = ReloadResult(ref, len(members))
        finally:
            with self.state:
                self.reloading = False
                self.state.notify_all()
            if requester is not None:
                requester.send(("reply", request, result))
            elif result.ok:
                _say(f"now serving {ref} (promoted in the registry) in every worker")
            else:
                _say(f"{ref} was promoted, but not swapped in: {result.reason()}")

    def follow_registry(self, now: float) -> None:
        """Reload on the version a ``follow`` names, once each time it changes, one model
        at a time (call holding ``state``, not reloading)."""
        if not any(self.follows) or now < self.follow_at:
            return
        self.follow_at = now + FOLLOW_S
        for i, follow in enumerate(self.follows):
            if follow is None:
                continue
            try:
                wanted = follow()
            except Exception as exc:  # a registry being written, a file gone: ask again later
                _say(f"cannot read which version to serve: {exc}")
                continue
            if wanted is None or wanted == self.followed[i]:
                continue
            self.followed[i] = wanted
            if wanted != self.models[i] and any(s.state == "ready" for s in self.slots):
                self.reloading = True
                threading.Thread(target=self.reload, args=(None, -1, wanted), daemon=True).start()
                return  # the next model's change is seen at the next poll

    # --- the main loop --------------------------------------------------------------------
    def run(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in self.slots:
                self.start(slot)
            while not self.stopping:
                self.step()
        finally:
            self.stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def step(self) -> None:
        live = [s for s in self.slots if s.process is not None]
        handles: dict[Any, tuple[str, _Slot]] = {}
        for slot in live:
            assert slot.process is not None and slot.conn is not None
            handles[slot.conn] = ("conn", slot)
            handles[slot.process.sentinel] = ("exit", slot)
        for handle in wait(list(handles), timeout=0.2):
            kind, slot = handles[handle]
            if kind == "conn" and slot.conn is not None:
                self.receive(slot)
        now = time.monotonic()
        if self.stopping:  # workers may be ending on the same SIGINT: restart none
            return
        with self.state:
            for slot in self.slots:
                process = slot.process
                if process is not None and not process.is_alive():
                    self.exited(slot, now)
                elif process is not None and self.stalled(slot, now):
                    _say(
                        f"worker {slot.pid} has not answered for {now - slot.beat.value:.0f} s; "
                        "killing it"
                    )
                    process.kill()
                    slot.state = "stalled"
                elif process is None and not self.reloading and now >= slot.retry_at:
                    self.start(slot)
            if not self.reloading:
                self.follow_registry(now)
            self.state.notify_all()

    def stop_all(self) -> None:
        processes = [s.process for s in self.slots if s.process is not None]
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
