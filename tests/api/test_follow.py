"""A running `tagger serve` follows promotions in the registry: the supervisor polls which
version is served and moves every worker to it with the two-phase reload."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from test_two_phase import FakeConn, FakeProcess, answer

from classifier import registry
from classifier.config import TrainingConfig
from classifier.workers import Supervisor, reuse_port_supported
from training.train import train

ROOT = Path(__file__).resolve().parents[2]


def fake_supervisor(follow) -> Supervisor:
    sup = Supervisor("app:factory", "127.0.0.1", 1, 2, "default@old", follow=follow)
    for i, slot in enumerate(sup.slots):
        slot.process, slot.conn, slot.state = FakeProcess(100 + i), FakeConn(), "ready"  # type: ignore[assignment]
    return sup


def poll(sup: Supervisor) -> None:
    """One poll of ``follow``; any reload it starts is answered (all workers agree)."""
    with sup.state:
        sup.follow_at = 0.0
        sup.follow_registry(time.monotonic())
    while sup.reloading:
        answer(sup)  # every worker prepares and commits
        time.sleep(0.01)


def kinds(sup: Supervisor) -> list[list[str]]:
    return [[m[0] for m in slot.conn.sent] for slot in sup.slots]  # type: ignore[union-attr]


def test_a_change_of_the_served_version_reloads_every_worker_once() -> None:
    served = ["default@old"]
    sup = fake_supervisor(lambda: served[0])
    poll(sup)
    assert kinds(sup) == [[], []]  # the pinned version: nothing to do
    served[0] = "default@new"
    poll(sup)
    assert kinds(sup) == [["prepare", "commit"]] * 2 and sup.model == "default@new"
    poll(sup)
    assert kinds(sup) == [["prepare", "commit"]] * 2  # once


def test_a_reload_by_hand_stands_until_the_next_promotion() -> None:
    served = ["default@old"]
    sup = fake_supervisor(lambda: served[0])
    poll(sup)
    sup.model = "default@by-hand"  # as POST /v1/admin/reload leaves it
    poll(sup)
    assert kinds(sup) == [[], []]
    served[0] = "default@promoted"
    poll(sup)
    assert sup.model == "default@promoted"


def test_a_registry_that_cannot_be_read_changes_nothing() -> None:
    def broken() -> str:
        raise OSError("being written")

    sup = fake_supervisor(broken)
    poll(sup)
    assert kinds(sup) == [[], []] and sup.model == "default@old"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        return str(json.loads(r.read())["model"])


def every_worker_serves(port: int, ref: str) -> bool:
    """Fresh connections land on the workers by hash: 40 of them reach both."""
    try:
        return all(health(port) == ref for _ in range(40))
    except OSError:
        return False


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not reuse_port_supported(), reason="needs Linux SO_REUSEPORT")
def test_the_service_swaps_on_promotion_in_every_worker(
    tmp_path: Path, trained_models_dir: Path, sample_dir: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_models_dir, models)
    first = registry.served_ref(models, "default")
    port, log = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    command = [sys.executable, "-m", "training.cli", "serve", "--models-dir", str(models)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        env=env | {"PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: every_worker_serves(port, first), 90), log.read_text()
        # a candidate the gate refuses is not served
        refused = train([str(sample_dir)], models, config=TrainingConfig(C=0.001))
        assert not refused.gate.promoted
        time.sleep(2 * 1.0 + 0.5)  # two polls
        assert every_worker_serves(port, first)
        # one it passes is, by every worker, while requests keep being answered
        failures: list[BaseException] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    health(port)
                except BaseException as exc:  # noqa: BLE001 (any failure counts)
                    failures.append(exc)

        threading.Thread(target=load, daemon=True).start()
        promoted = train([str(sample_dir)], models)
        assert promoted.gate.promoted
        assert wait_for(lambda: every_worker_serves(port, promoted.ref), 60), log.read_text()
        stop.set()
        assert not failures
        # a promotion by hand is followed too
        registry.promote(models, refused.ref)
        assert wait_for(lambda: every_worker_serves(port, refused.ref), 60), log.read_text()
        assert "promoted in the registry" in log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
