"""The feedback store on SQLite and on a real PostgreSQL: records kept whole, the schema
versioned and migrated, the latest verdict per document, export and merge for retraining."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from classifier.corpus import Document, read_corpus
from classifier.errors import FeedbackError, FeedbackStoreError
from classifier.feedback import (
    SCHEMA_VERSION,
    Feedback,
    MergeReport,
    check,
    corrections,
    database_url,
    export_corpus,
    merge,
    open_store,
    shown,
    tag_problem,
)

ONE = Feedback(
    text="各国应加强学校教育，提高女童入学率。\n\n2. 第二段。",
    model="default@20260101-000000-abcdef12",
    accepted=("EDUCATION", "GIRLS"),
    rejected=("HUMAN RIGHTS",),
    added=("教育 政策",),
    id="doc-1",
)


def test_a_record_comes_back_whole_and_is_counted(feedback_db: str) -> None:
    store = open_store(feedback_db)
    try:
        assert store.count() == 0
        seq = store.add(ONE)
        (back,) = store.records()
        assert back.seq == seq and back.created_at is not None
        assert (back.text, back.model, back.id) == (ONE.text, ONE.model, ONE.id)
        assert (back.accepted, back.rejected, back.added) == (
            ONE.accepted,
            ONE.rejected,
            ONE.added,
        )
        assert store.count() == 1
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()


def test_the_latest_verdict_on_a_document_wins(feedback_db: str) -> None:
    store = open_store(feedback_db)
    try:
        store.add(ONE)
        store.add(Feedback(text="无编号文本", model=ONE.model, added=("X",)))
        store.add(Feedback(text="新的文本", model=ONE.model, accepted=("GIRLS",), id="doc-1"))
        store.add(Feedback(text="无编号文本", model=ONE.model, added=("Y",)))  # same text
        docs = list(corrections(store))
        assert store.count() == 4
        assert [(d.id, d.text, d.tags) for d in docs] == [
            ("doc-1", "新的文本", ("GIRLS",)),
            (docs[1].id, "无编号文本", ("Y",)),
        ]
        assert docs[1].id.startswith("text-")
    finally:
        store.close()


def test_sqlite_store_is_in_wal_mode_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "store.sqlite3"  # its folder is made
    open_store(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("UPDATE tagger_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(FeedbackStoreError, match="newer than this tagger"):
        open_store(path)


def test_an_old_store_is_migrated_and_keeps_its_records(feedback_db: str) -> None:
    import sqlalchemy as sa

    from classifier.feedback import FeedbackStore

    store = open_store(feedback_db)  # made at the newest version; rebuilt at version 1:
    engine = store.engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE feedback")
        conn.exec_driver_sql("DROP TABLE tagger_schema")
    old = FeedbackStore(engine, "old")
    assert old.migrate(to=1) == 0 and old.schema_version() == 1
    old.add(ONE)
    assert not sa.inspect(engine).get_indexes("feedback")
    again = open_store(feedback_db)
    try:
        assert again.schema_version() == SCHEMA_VERSION
        assert [r.text for r in again.records()] == [ONE.text]
        assert [i["name"] for i in sa.inspect(again.engine).get_indexes("feedback")] == [
            "ix_feedback_doc_key_seq"
        ]
    finally:
        again.close()
        store.close()


def test_several_openers_at_once_migrate_once(feedback_db: str) -> None:
    """Workers start together: each opens (and would migrate) the same new store."""
    stores, errors = [], []

    def opener() -> None:
        try:
            stores.append(open_store(feedback_db))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {s.schema_version() for s in stores} == {SCHEMA_VERSION}
    for s in stores:
        s.close()


def test_a_table_not_made_by_tagger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE feedback (x)")
    with pytest.raises(FeedbackStoreError, match="not a store made by tagger"):
        open_store(path)


def test_store_names_and_refusals() -> None:
    assert database_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert database_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert database_url("rel/f.db").startswith("sqlite:////")
    assert "pw" not in shown("postgresql://u:pw@h/db")
    with pytest.raises(FeedbackStoreError, match="unsupported feedback database 'mysql'"):
        database_url("mysql://h/db")
    with pytest.raises(FeedbackStoreError, match="no feedback store at"):
        open_store("/nonexistent/feedback.sqlite3", create=False)


def test_an_unreachable_store_is_a_store_error() -> None:
    with pytest.raises(FeedbackStoreError, match="cannot migrate the feedback store"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("RULE OF LAW", None),
        ("法治", None),
        ("", "empty tag"),
        (" A", "whitespace"),
        ("A|B", "contains '|'"),
        ("A\x00", "U+0000"),
        ("A\ud800", "U+D800"),
    ],
)
def test_tag_rules(tag: str, problem: str | None) -> None:
    found = tag_problem(tag)
    assert found is None if problem is None else problem in (found or "")


def test_check_names_the_list_at_fault() -> None:
    labels = {"EDUCATION", "GIRLS", "HUMAN RIGHTS"}
    check(ONE, labels)
    with pytest.raises(FeedbackError, match="accepted: 1 tag.* not among the labels") as err:
        check(Feedback("t", ONE.model, accepted=("NEW",)), labels)
    assert err.value.field == "accepted"
    with pytest.raises(FeedbackError, match="rejected: tag 'GIRLS' is also in accepted"):
        check(Feedback("t", ONE.model, accepted=("GIRLS",), rejected=("GIRLS",)), labels)
    with pytest.raises(FeedbackError, match="added: tag 'X' is twice"):
        check(Feedback("t", ONE.model, added=("X", "X")), labels)


def test_merge_overrides_adds_and_removes() -> None:
    corpus = [Document("a", "old a", ("T1",)), Document("b", "old b", ("T2",)), Document("c", "c")]
    fixes = [Document("a", "new a", ("T3",)), Document("b", "b", ()), Document("n", "new", ("T1",))]
    report = MergeReport()
    merged = list(merge(corpus, fixes, report))
    assert merged == [Document("a", "new a", ("T3",)), Document("c", "c"), fixes[2]]
    assert (report.corrections, report.used, report.overrode, report.added, report.removed) == (
        3,
        2,
        1,
        1,
        1,
    )


def test_export_writes_a_corpus_the_readers_take(tmp_path: Path) -> None:
    store = open_store(tmp_path / "f.sqlite3")
    store.add(ONE)
    store.add(Feedback("全部拒绝", ONE.model, rejected=("GIRLS",), id="none-left"))
    out = tmp_path / "fixes.jsonl"
    report = export_corpus(store, out)
    store.close()
    assert (report.written, report.without_tags) == (1, 1)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"id": "doc-1", "text": ONE.text, "tags": list(ONE.tags)}]
    assert [d.tags for d in read_corpus([out])] == [("EDUCATION", "GIRLS", "教育 政策")]


def test_an_open_that_finds_sqlite_locked_tries_again(tmp_path: Path, monkeypatch) -> None:
    """SQLite answers "database is locked" without waiting where waiting could deadlock (new
    files put in WAL mode by several workers at once): the open tries again; any other error
    is reported at once."""
    import classifier.feedback as feedback

    real, calls = feedback.FeedbackStore.migrate, []

    def flaky(self, to: int = SCHEMA_VERSION) -> int:
        calls.append(to)
        if len(calls) < 3:
            raise FeedbackStoreError(f"cannot migrate {self.name}: database is locked")
        return real(self, to)

    monkeypatch.setattr(feedback.FeedbackStore, "migrate", flaky)
    store = open_store(tmp_path / "a.sqlite3")
    assert len(calls) == 3 and store.schema_version() == SCHEMA_VERSION
    store.close()

    def broken(self, to: int = SCHEMA_VERSION) -> int:
        calls.append(to)
        raise FeedbackStoreError(f"cannot migrate {self.name}: disk I/O error")

    monkeypatch.setattr(feedback.FeedbackStore, "migrate", broken)
    calls.clear()
    with pytest.raises(FeedbackStoreError, match="disk I/O"):
        open_store(tmp_path / "b.sqlite3")
    assert len(calls) == 1
