"""Run an ASGI application with uvicorn: one process, or worker processes with a listening
socket each. The application is named by an import string (``module:factory``), so the
command line that starts the service never imports it.

uvicorn's own ``--workers`` shares one listening socket between the workers, and which
worker accepts a burst of keep-alive connections is up to the scheduler: with 16 clients and
two workers, two quiet benchmark runs of three put every connection on one worker. On Linux,
each worker here binds its own socket with ``SO_REUSEPORT`` instead, and the kernel spreads
incoming connections over the sockets by hash. The supervisor (also for one worker) restarts
a worker that dies after starting, stops everything when one cannot start, and stops the
workers gracefully on SIGINT/SIGTERM. Elsewhere ``--workers`` falls back to uvicorn's own.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from classifier.errors import ClassifierError

LOG_LEVEL = "warning"
BACKLOG = 2048
# uvicorn's exit status when the application fails to start (e.g. no loadable model)
STARTUP_FAILURE = 3
STOP_TIMEOUT_S = 10.0


def _say(message: str) -> None:
    """The supervisor's own messages, on standard error (no logging is configured here)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class ServeError(ClassifierError):
    """The server could not start: a message for the user, in one line."""


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


def _worker(app: str, host: str, port: int) -> None:
    """One worker process: its own listening socket, one uvicorn server."""
    import uvicorn

    sock = listening_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(app, factory=True, log_level=LOG_LEVEL))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve(app: str, host: str, port: int, workers: int = 1) -> None:
    """Serve the application factory ``app`` until interrupted; raise ServeError if it cannot
    start."""
    import uvicorn

    if not reuse_port_supported():
        uvicorn.run(app, factory=True, host=host, port=port, workers=workers, log_level=LOG_LEVEL)
        return
    # glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps
    # what they free: under concurrent batch requests a worker's RSS rose from 223 to 288 MB.
    # Two arenas bound it (219-228 MB) and were faster too (9,186 against 7,678 texts/s with
    # 8 batch clients on 2 workers). Workers are new processes, so they read it at start.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    # Fail in one line if the address is taken, before starting any worker. The probe never
    # listens, so it never joins the group of sockets the kernel hands connections to.
    listening_socket(host, port, listen=False).close()
    _supervise(app, host, port, workers)


def _supervise(app: str, host: str, port: int, workers: int) -> None:
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(app, host, port), daemon=False)
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    try:
        while not stopping:
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    raise ServeError("a worker could not start the application (its log is above)")
                _say(f"worker {process.pid} exited with status {process.exitcode}; restarting it")
                processes[i] = start()
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
