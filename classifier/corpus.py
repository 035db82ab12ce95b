"""Read labelled documents from seed-format files, folders and JSONL; stream, report skips."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from classifier.errors import CorpusFormatError

HEADER = "%%%"
TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl",)
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One document: an identifier, its text and its tags (possibly none when unlabelled)."""

    id: str
    text: str
    tags: tuple[str, ...] = ()


@dataclass
class Skip:
    """A document that was not read, with where it came from and why."""

    source: str
    reason: str


@dataclass
class ReadReport:
    """What a corpus read produced: documents read, skips by reason and a content hash."""

    n_documents: int = 0
    skipped: list[Skip] = field(default_factory=list)
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    def add(self, doc: Document) -> None:
        self.n_documents += 1
        for part in (doc.id, "\x1f".join(doc.tags), doc.text):
            self._hash.update(part.encode("utf-8"))
            self._hash.update(b"\x1e")

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(_reason_kind(s.reason) for s in self.skipped))

    def summary(self) -> dict[str, object]:
        return {
            "documents_read": self.n_documents,
            "documents_skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason,
            "sha256": self.sha256,
        }


def _reason_kind(reason: str) -> str:
    """Group skip reasons by their leading phrase (before any detail after ':')."""
    return reason.split(":", 1)[0]


def read_corpus(
    paths: Iterable[str | os.PathLike[str]],
    *,
    report: ReadReport | None = None,
    strict: bool = False,
    require_tags: bool = True,
) -> Iterator[Document]:
    """Yield documents from files and folders one at a time; record or raise on bad ones.

    A folder is searched recursively for ``*.txt`` (seed format) and ``*.jsonl`` files, in
    sorted order. With ``strict`` the first bad document raises ``CorpusFormatError``;
    otherwise it is recorded in ``report.skipped`` and reading goes on.
    """
    report = report if report is not None else ReadReport()
    for raw in paths:
        root = Path(raw)
        if not root.exists() and not root.is_symlink():
            raise CorpusFormatError(str(root), "no such file or folder")
        for path, doc_id in _corpus_files(root):
            for item in _read_file(path, doc_id, require_tags):
                if isinstance(item, Skip):
                    if strict:
                        raise CorpusFormatError(item.source, item.reason)
                    report.skipped.append(item)
                else:
                    report.add(item)
                    yield item


def _corpus_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield (path, document id) for a file, or for every corpus file under a folder."""
    if not root.is_dir():
        yield root, root.name
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        # A folder whose name looks like a corpus file is reported, not silently ignored.
        for name in dirnames:
            if name.endswith(TEXT_SUFFIXES + JSONL_SUFFIXES):
                yield here / name, (here / name).relative_to(root).as_posix()
        for name in sorted(filenames):
            if name.endswith(TEXT_SUFFIXES + JSONL_SUFFIXES):
                yield here / name, (here / name).relative_to(root).as_posix()


def _read_file(path: Path, doc_id: str, require_tags: bool) -> Iterator[Document | Skip]:
    source = str(path)
    try:
        if path.is_dir():
            yield Skip(source, "not a file: is a directory")
            return
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            yield Skip(source, f"file too large: {size} bytes > {MAX_FILE_BYTES}")
            return
        data = path.read_bytes()
    except OSError as exc:
        yield Skip(source, f"unreadable: {exc.strerror or exc}")
        return
    if path.name.endswith(JSONL_SUFFIXES):
        yield from _parse_jsonl(data, source, require_tags)
    else:
        yield _parse_seed(data, source, doc_id, require_tags)


def decode_text(data: bytes, source: str) -> str:
    """Decode UTF-8 (BOM optional), normalise line ends, or raise naming the offending byte."""
    if not data:
        raise CorpusFormatError(source, "empty file: zero bytes")
    # A few stray NUL bytes occur in real text files; many mean binary data or UTF-16.
    nul_heavy = data.count(b"\x00") > len(data) // 10
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in data:
            raise CorpusFormatError(source, "binary file: not text") from None
        raise CorpusFormatError(
            source, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    if nul_heavy:
        raise CorpusFormatError(source, "binary file: mostly NUL bytes (binary or UTF-16)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_tags(header: str) -> tuple[str, ...]:
    """Split a ``%%%A|B|`` header (or its body) into stripped, unique, non-empty tags."""
    body = header[len(HEADER) :] if header.startswith(HEADER) else header
    tags = (t.strip() for t in body.split("|"))
    return tuple(dict.fromkeys(t for t in tags if t))


def _parse_seed(data: bytes, source: str, doc_id: str, require_tags: bool) -> Document | Skip:
    try:
        text = decode_text(data, source)
    except CorpusFormatError as exc:
        return Skip(source, exc.reason)
    header, _, rest = text.partition("\n")
    if not header.startswith(HEADER):
        if require_tags:
            return Skip(source, "no header: line 1 must start with %%%")
        return _document(doc_id, text, (), source, require_tags)
    blank, _, body = rest.partition("\n")
    if blank.strip():
        return Skip(source, "no blank line: line 2 must be empty")
    return _document(doc_id, body, parse_tags(header), source, require_tags)


def _document(
    doc_id: str, text: str, tags: tuple[str, ...], source: str, require_tags: bool
) -> Document | Skip:
    if require_tags and not tags:
        return Skip(source, "empty tag list: the header names no tag")
    if not text.strip():
        return Skip(source, "empty text: nothing after the header")
    return Document(doc_id, text, tags)


def _parse_jsonl(data: bytes, source: str, require_tags: bool) -> Iterator[Document | Skip]:
    try:
        text = decode_text(data, source)
    except CorpusFormatError as exc:
        yield Skip(source, exc.reason)
        return
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield parse_json_record(line, f"{source}:{lineno}", require_tags)


def parse_json_record(line: str, source: str, require_tags: bool) -> Document | Skip:
    """Parse one ``{"id", "text", "tags"}`` line; ``id`` defaults to the source position."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Skip(source, f"invalid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(record, dict):
        return Skip(source, "invalid record: expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        return Skip(source, "invalid field: 'text' must be a string")
    doc_id = record.get("id", source)
    if not isinstance(doc_id, str | int):
        return Skip(source, "invalid field: 'id' must be a string or an integer")
    raw_tags = record.get("tags", [])
    if not isinstance(raw_tags, list) or not all(isinstance(t, str) for t in raw_tags):
        return Skip(source, "invalid field: 'tags' must be a list of strings")
    tags = tuple(dict.fromkeys(t.strip() for t in raw_tags if t.strip()))
    return _document(str(doc_id), text, tags, source, require_tags)


def read_inputs(sources: Iterable[str], stdin: TextIO) -> Iterator[Document]:
    """Documents to tag, labelled or not: files, folders and JSONL as ``read_corpus`` reads
    them (the first bad one raises), and ``-`` for ``stdin``: JSONL records when its first
    non-blank character is ``{``, otherwise one plain text."""
    for source in sources:
        if source != "-":
            yield from read_corpus([source], require_tags=False, strict=True)
            continue
        text = stdin.read()
        if text.lstrip().startswith("{"):
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    doc = parse_json_record(line, f"<stdin>:{n}", require_tags=False)
                    if isinstance(doc, Skip):
                        raise CorpusFormatError(doc.source, doc.reason)
                    yield doc
        elif text.strip():
            yield Document("<stdin>", text)
