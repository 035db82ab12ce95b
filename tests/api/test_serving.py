"""`tagger serve`: worker processes with a listening socket each, supervised."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from classifier.workers import ServeError, listening_socket, reuse_port_supported

TAGGER = Path(sys.executable).parent / "tagger"
pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="needs Linux SO_REUSEPORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sockets_share_a_port_and_a_taken_port_is_named() -> None:
    port = free_port()
    first = listening_socket("127.0.0.1", port)
    second = listening_socket("127.0.0.1", port)  # a second worker's socket: allowed
    first.close()
    second.close()
    with socket.socket() as plain:  # a server that does not share its port
        plain.bind(("127.0.0.1", port))
        plain.listen()
        with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{port}"):
            listening_socket("127.0.0.1", port)


def listeners(port: int) -> set[int]:
    """PIDs of processes listening on ``port`` (from /proc: socket inodes of state LISTEN)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    pids.add(int(pid))
        except OSError:
            continue
    return pids


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def replaced(now: set[int], victim: int, workers: int) -> bool:
    return len(now) == workers and victim not in now


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.load(r)["status"] == "ok"
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_each_listen_answer_restart_and_stop(
    trained_models_dir: Path, workers: int
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    server = subprocess.Popen(
        [
            str(TAGGER),
            "serve",
            "--models-dir",
            str(trained_models_dir),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: len(listeners(port)) == workers and healthy(port)), "no start"
        pids = listeners(port)
        assert server.pid not in pids  # the supervisor itself never accepts
        victim = min(pids)
        environ = Path(f"/proc/{victim}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
        os.kill(victim, signal.SIGKILL)
        # one snapshot per check: the killed worker may still be listed while it dies
        assert wait_for(lambda: replaced(listeners(port), victim, workers))
        assert wait_for(lambda: healthy(port))
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert f"worker {victim} exited" in stderr
    assert listeners(port) == set()
