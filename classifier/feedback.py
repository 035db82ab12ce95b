"""The feedback store: editors' corrections of suggested tags, kept in SQLite or PostgreSQL.

One code path (SQLAlchemy Core) for both. A store is named by a path (a SQLite file, WAL
mode, made when missing) or a database URL (``sqlite:///…``, ``postgresql://…``, taken with
psycopg 3). Its schema is versioned (table ``tagger_schema``) and migrated on opening, one
step at a time, under a lock that lets several workers open it at once (``BEGIN IMMEDIATE``
on SQLite, an advisory lock on PostgreSQL); a store newer than this code is refused.

A record is one editor's verdict on one text: the suggestions ``accepted`` and ``rejected``,
the tags ``added``, and the model (``NAME@VERSION``) that suggested them. Records are only
ever added. For retraining, the latest record of each document wins (``corrections``): its
tags are ``accepted + added``; a document is its ``id`` when one was sent, else its text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from classifier.corpus import Document
from classifier.errors import FeedbackError, FeedbackStoreError

if TYPE_CHECKING:
    import sqlalchemy as sa

ENV = "TAGGER_FEEDBACK_DB"
DEFAULT_DB = Path("data") / "feedback.sqlite3"
SCHEMA_VERSION = 2
LISTS = ("accepted", "rejected", "added")
TAG_SEPARATOR = "|"  # separates tags in a seed file's header: never inside a tag
SQLITE_BUSY_S = 30.0  # how long a writer waits for another one's lock on a SQLite file
_PG_LOCK = 0x74616767  # the advisory lock key of migrations ("tagg")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Feedback:
    """One editor's verdict on the tags suggested for a text."""

    text: str
    model: str
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    id: str | None = None

    @property
    def key(self) -> str:
        """The document this record is about: its id, else a hash of its text."""
        if self.id is not None:
            return self.id
        return "text-" + hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:32]

    @property
    def tags(self) -> tuple[str, ...]:
        """The document's tags by this verdict: the accepted suggestions, then the added."""
        return tuple(dict.fromkeys(self.accepted + self.added))


@dataclass(frozen=True)
class Stored(Feedback):
    """A record as kept: its number in the store (later records have larger ones) and time."""

    seq: int = 0
    created_at: datetime | None = None


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` cannot be a tag (None when it can): it must be printable text with no
    ``|`` (the seed format's separator) and no leading or trailing whitespace."""
    if not tag or tag.isspace():
        return "empty tag"
    if tag != tag.strip():
        return f"tag {tag[:50]!r} has leading or trailing whitespace"
    if bad := _CONTROL.search(tag):
        return f"tag contains U+{ord(bad.group()):04X} at position {bad.start()}"
    if TAG_SEPARATOR in tag:
        return f"tag {tag[:50]!r} contains {TAG_SEPARATOR!r}"
    return None


def check(feedback: Feedback, labels: Collection[str]) -> None:
    """Refuse a record whose lists contradict each other or whose ``accepted`` or ``rejected``
    tags are not ``labels`` of the model named (they are its suggestions); ``added`` tags may
    be any (new thesaurus terms are how a vocabulary grows)."""
    seen: dict[str, str] = {}
    for name in LISTS:
        for tag in getattr(feedback, name):
            if tag in seen:
                where = "twice" if seen[tag] == name else f"also in {seen[tag]}"
                raise FeedbackError(name, f"tag {tag[:50]!r} is {where}")
            seen[tag] = name
    for name in ("accepted", "rejected"):
        unknown = [t for t in getattr(feedback, name) if t not in labels]
        if unknown:
            raise FeedbackError(
                name,
                f"{len(unknown)} tag(s) not among the labels of {feedback.model}, "
                f"e.g. {unknown[0][:50]!r} (put new tags in 'added')",
            )


class Tables(NamedTuple):
    schema: sa.Table  # one row: the schema version
    feedback: sa.Table  # the records
    by_doc: sa.Index  # (doc_key, seq): the latest record of each document


@cache
def tables() -> Tables:
    """The store's tables, defined on first use (importing SQLAlchemy costs 0.3 s or more,
    which ``tagger --help`` and the API's settings need not pay)."""
    import sqlalchemy as sa

    meta = sa.MetaData()
    schema = sa.Table("tagger_schema", meta, sa.Column("version", sa.Integer, nullable=False))
    records = sa.Table(
        "feedback",
        meta,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("doc_key", sa.Text, nullable=False),
        sa.Column("doc_id", sa.Text, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("accepted", sa.JSON, nullable=False),
        sa.Column("rejected", sa.JSON, nullable=False),
        sa.Column("added", sa.JSON, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    by_doc = sa.Index("ix_feedback_doc_key_seq", records.c.doc_key, records.c.seq)
    return Tables(schema, records, by_doc)


def _v1(conn: sa.Connection) -> None:
    """The schema version table and the records."""
    from sqlalchemy.schema import CreateTable

    t = tables()
    t.schema.create(conn)
    conn.execute(CreateTable(t.feedback))  # the table alone: its index is step 2
    conn.execute(t.schema.insert(), {"version": 0})


def _v2(conn: sa.Connection) -> None:
    """An index for "the latest record of each document" (export, retraining)."""
    tables().by_doc.create(conn)


MIGRATIONS = (_v1, _v2)  # step n takes a store from version n - 1 to n
assert len(MIGRATIONS) == SCHEMA_VERSION


def database_url(target: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a store named by a path or a URL (``postgresql://`` is taken
    with psycopg 3); other databases are refused."""
    text = os.fspath(target)
    if "://" not in text:
        return "sqlite:///" + str(Path(text).expanduser().absolute())
    scheme, rest = text.split("://", 1)
    backend = scheme.split("+", 1)[0].lower()
    if backend in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    if backend == "sqlite":
        return "sqlite://" + rest
    raise FeedbackStoreError(
        f"unsupported feedback database {backend!r}: give a SQLite file path, a sqlite:/// "
        "or a postgresql:// URL"
    )


def shown(target: str | os.PathLike[str]) -> str:
    """A store's name fit to print or record: its URL without the password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url(target)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: no part of it is shown
        return "<unparsable database URL>"


def _sqlite_events(engine: sa.Engine) -> None:
    """WAL, a busy timeout and explicit BEGINs (pysqlite's own are unreliable: SQLAlchemy's
    documented recipe); ``sqlite_begin="IMMEDIATE"`` takes the write lock at once."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, record: Any) -> None:
        dbapi.isolation_level = None
        cursor = dbapi.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_S * 1000)}")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        cursor.execute("PRAGMA synchronous = FULL")  # a post answered is on disk
        cursor.close()
        if str(mode).lower() not in ("wal", "memory"):
            raise FeedbackStoreError(f"cannot put the SQLite store in WAL mode (got {mode})")

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


class FeedbackStore:
    """Records in one database: add, count, read back, the latest of each document."""

    def __init__(self, engine: sa.Engine, name: str) -> None:
        self.engine = engine
        self.name = name

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A transaction that holds the store's write lock from its start."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
                yield conn

    def schema_version(self) -> int:
        import sqlalchemy as sa

        with self._errors("read the schema version of"), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(tables().schema.name):
                return 0
            return int(conn.execute(sa.select(tables().schema.c.version)).scalar_one())

    def migrate(self, to: int = SCHEMA_VERSION) -> int:
        """Bring the schema to version ``to`` (the newest by default); the version before."""
        import sqlalchemy as sa

        t = tables()
        with self._errors("migrate"), self._writing() as conn:
            exists = sa.inspect(conn).has_table(t.schema.name)
            found = int(conn.execute(sa.select(t.schema.c.version)).scalar_one()) if exists else 0
            if found > SCHEMA_VERSION:
                raise FeedbackStoreError(
                    f"the feedback store {self.name} has schema version {found}, newer than "
                    f"this tagger's {SCHEMA_VERSION}: upgrade tagger"
                )
            if found == 0 and sa.inspect(conn).has_table(t.feedback.name):
                raise FeedbackStoreError(
                    f"{self.name} has a 'feedback' table but no schema version: not a store "
                    "made by tagger"
                )
            for step in range(found, min(to, SCHEMA_VERSION)):
                MIGRATIONS[step](conn)
                conn.execute(t.schema.update().values(version=step + 1))
            return found

    def add(self, feedback: Feedback) -> int:
        """Store one record; its number (``seq``)."""
        row = {
            "doc_key": feedback.key,
            "doc_id": feedback.id,
            "text": feedback.text,
            **{name: list(getattr(feedback, name)) for name in LISTS},
            "model": feedback.model,
            "created_at": datetime.now(UTC),
        }
        with self._errors("write to"), self.engine.begin() as conn:
            t = tables().feedback
            inserted = conn.execute(t.insert().returning(t.c.seq), row)
            return int(inserted.scalar_one())

    def count(self) -> int:
        """How many records the store holds (for ``/metrics``)."""
        import sqlalchemy as sa

        with self._errors("read"), self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(tables().feedback)).scalar_one()
            )

    def records(self, latest_only: bool = False) -> Iterator[Stored]:
        """Every record in the order stored, or only the latest of each document."""
        import sqlalchemy as sa

        t = tables().feedback
        query = sa.select(t).order_by(t.c.seq)
        if latest_only:
            query = query.where(t.c.seq.in_(sa.select(sa.func.max(t.c.seq)).group_by(t.c.doc_key)))
        with self._errors("read"), self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(query).mappings():
                yield _stored(row)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Database failures as ``FeedbackStoreError``, naming the store (no password)."""
        import sqlalchemy as sa

        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            reason = " ".join(str(cause).split())[:300]
            raise FeedbackStoreError(
                f"cannot {doing} the feedback store {self.name}: {type(cause).__name__}: {reason}"
            ) from None


def _stored(row: Mapping[str, Any]) -> Stored:
    return Stored(
        text=row["text"],
        model=row["model"],
        accepted=tuple(row["accepted"]),
        rejected=tuple(row["rejected"]),
        added=tuple(row["added"]),
        id=row["doc_id"],
        seq=int(row["seq"]),
        created_at=row["created_at"],
    )


def open_store(target: str | os.PathLike[str], *, create: bool = True) -> FeedbackStore:
    """Open (and migrate) the store at a path or URL; a missing SQLite file is made, unless
    ``create`` is false (then it is an error: reading a store that is not there)."""
    import sqlalchemy as sa

    url = database_url(target)
    name = shown(target)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            if not create:
                raise FeedbackStoreError(f"no feedback store at {path}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FeedbackStoreError(
                    f"cannot make the folder of the feedback store {path}: {exc.strerror}"
                ) from None
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise FeedbackStoreError(
            f"{name} needs the {exc.name} module: pip install 'tagger[postgres]'"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise FeedbackStoreError(f"invalid feedback database URL {name}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _sqlite_events(engine)
    store = FeedbackStore(engine, name)
    try:
        _migrate_when_free(store)
    except BaseException:
        engine.dispose()
        raise
    return store


def _migrate_when_free(store: FeedbackStore) -> None:
    """Migrate; on SQLite, an open that finds the file locked without waiting (SQLite skips
    its busy handler where waiting could deadlock, as when several workers put a new file in
    WAL mode at once) tries again until ``SQLITE_BUSY_S`` has passed."""
    deadline = time.monotonic() + SQLITE_BUSY_S
    while True:
        try:
            store.migrate()
            return
        except FeedbackStoreError as exc:
            locked = store.engine.dialect.name == "sqlite" and "database is locked" in str(exc)
            if not locked or time.monotonic() > deadline:
                raise
        store.engine.dispose()  # fresh connections: each sets WAL mode and its timeout again
        time.sleep(0.05)


# --- retraining ------------------------------------------------------------------------------


def corrections(store: FeedbackStore) -> Iterator[Document]:
    """The latest verdict on each document as a corpus document (tags: accepted + added;
    none when every suggestion was rejected and none added)."""
    for record in store.records(latest_only=True):
        yield Document(record.key, record.text, record.tags)


@dataclass
class MergeReport:
    """What corrections did to a corpus: how many were used, overrode a corpus document
    (same id), were added as new documents, or removed one (no tag left)."""

    corrections: int = 0
    overrode: int = 0
    added: int = 0
    removed: int = 0
    unused: int = 0  # no tag left and no corpus document to remove
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    @property
    def used(self) -> int:
        return self.overrode + self.added

    @property
    def sha256(self) -> str:
        return str(self._hash.hexdigest())

    def summary(self) -> dict[str, object]:
        return {
            "corrections": self.corrections,
            "used": self.used,
            "overrode": self.overrode,
            "added": self.added,
            "removed": self.removed,
            "unused": self.unused,
            "sha256": self.sha256,
        }


def merge(
    docs: Iterable[Document], fixes: Iterable[Document], report: MergeReport
) -> Iterator[Document]:
    """The corpus with corrections applied: a corrected document (same id) has the
    correction's text and tags, or is left out when the correction has no tag; the other
    corrections follow as new documents. Corrections are held in memory, the corpus is
    streamed."""
    pending: dict[str, Document] = {}
    for fix in fixes:
        pending[fix.id] = fix
        report.corrections += 1
        report._hash.update(json.dumps([fix.id, fix.text, fix.tags]).encode("utf-8"))
    applied: set[str] = set()
    for doc in docs:
        fix = pending.get(doc.id)
        if fix is None:
            yield doc
            continue
        if doc.id in applied:
            continue  # a second corpus document of the same id: the correction is in
        applied.add(doc.id)
        report.overrode += bool(fix.tags)
        report.removed += not fix.tags
        if fix.tags:
            yield fix
    for key, fix in pending.items():
        if key in applied:
            continue
        if fix.tags:
            report.added += 1
            yield fix
        else:
            report.unused += 1


@dataclass(frozen=True)
class ExportReport:
    written: int
    without_tags: int
    out: Path


def export_corpus(store: FeedbackStore, out: Path) -> ExportReport:
    """Write the corrections as a JSONL corpus (``{"id", "text", "tags"}`` a line) to
    ``out``, atomically; corrections with no tag left are not written (counted)."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    written = without = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for doc in corrections(store):
                if not doc.tags:
                    without += 1
                    continue
                record = {"id": doc.id, "text": doc.text, "tags": list(doc.tags)}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(written, without, out)
