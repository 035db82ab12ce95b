"""The supervisor's two-phase reload, with stand-in workers: every worker prepares, then all
commit, or, when any refuses, all that prepared abort and the pin stays."""

from __future__ import annotations

import threading
import time

from classifier.workers import ReloadResult, Supervisor, _Slot


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    def is_alive(self) -> bool:
        return True


class FakeConn:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, message: tuple) -> None:
        self.sent.append(message)


def supervisor(n: int) -> Supervisor:
    sup = Supervisor("app:factory", "127.0.0.1", 1, n, "default@old")
    for i, slot in enumerate(sup.slots):
        slot.process, slot.conn, slot.state = FakeProcess(100 + i), FakeConn(), "ready"  # type: ignore[assignment]
    return sup


def answer(sup: Supervisor, refuse: set[int] = frozenset()) -> None:
    """Reply to every prepare/commit/abort sent so far (refusing prepares of ``refuse``)."""
    with sup.state:
        for slot in sup.slots:
            for kind, ident, *_ in slot.conn.sent:  # type: ignore[union-attr]
                if kind in ("prepare", "commit", "abort") and ident not in sup.replies:
                    refused = kind == "prepare" and slot.pid in refuse
                    sup.replies[ident] = "checksum mismatch" if refused else None
        sup.state.notify_all()


def run(sup: Supervisor, refuse: set[int] = frozenset()) -> ReloadResult:
    requester = sup.slots[0]
    thread = threading.Thread(target=sup.reload, args=(requester, 99, "default@new"))
    thread.start()
    while thread.is_alive():
        answer(sup, refuse)
        time.sleep(0.01)
    (reply,) = [m for m in requester.conn.sent if m[0] == "reply"]  # type: ignore[union-attr]
    return reply[2]


def kinds(slot: _Slot) -> list[str]:
    return [m[0] for m in slot.conn.sent if m[0] != "reply"]  # type: ignore[union-attr]


def test_all_prepare_then_all_commit() -> None:
    sup = supervisor(3)
    result = run(sup)
    assert result.ok and result.workers == 3
    assert [kinds(s) for s in sup.slots] == [["prepare", "commit"]] * 3
    assert sup.model == "default@new"  # a worker started from now on loads it


def test_one_refusal_aborts_everywhere_and_keeps_the_pin() -> None:
    sup = supervisor(3)
    result = run(sup, refuse={101})
    assert not result.ok and result.failed == {101: "checksum mismatch"}
    assert "worker 101: checksum mismatch" in result.reason()
    assert [kinds(s) for s in sup.slots] == [
        ["prepare", "abort"],
        ["prepare"],
        ["prepare", "abort"],
    ]
    assert sup.model == "default@old"


def test_a_second_reload_while_one_runs_is_refused_as_busy() -> None:
    sup = supervisor(2)
    sup.reloading = True
    slot = sup.slots[1]

    slot.conn.recv = lambda: ("reload", 7, "default@new")  # type: ignore[union-attr]
    sup.receive(slot)
    (reply,) = slot.conn.sent  # type: ignore[union-attr]
    assert reply[0] == "reply" and reply[2].busy and "in progress" in reply[2].reason()
