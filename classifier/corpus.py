"""Read labelled documents from seed-format files, folders and JSONL; stream, report skips.

Reading is bounded and never blocks: only regular files are opened (a FIFO, device or socket
is skipped with its reason, checked before opening and again on the open descriptor, which
is opened non-blocking), a file or stdin holds at most ``MAX_FILE_BYTES``, JSONL is read a
line at a time (at most ``MAX_LINE_BYTES`` a line), and a bad file or line is reported and
skipped while the rest is read. Memory: a seed file costs its bytes plus its decoded text
(about 1.7 times its size for Chinese, 2 for ASCII, 5 at worst when one character outside
the BMP makes the text 4 bytes a character); a JSONL file costs its longest line a few times
over, whatever its size, besides the documents the caller keeps.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import BinaryIO, TextIO

from classifier.errors import CorpusFormatError

HEADER = "%%%"
TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl",)
MAX_FILE_BYTES = 200 * 1024 * 1024  # a corpus file, or stdin
MAX_LINE_BYTES = 32 * 1024 * 1024  # one JSONL line (one record)
MAX_HEADER_CHARS = 1024 * 1024  # a seed file's %%% header line
MAX_SKIPS_KEPT = 1000  # skips kept with their source and reason (all are counted)
CHUNK_BYTES = 1024 * 1024
STDIN = "<stdin>"
# byte order marks, longest first (the UTF-32-LE mark begins with the UTF-16-LE one)
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the check opens without waiting
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BLANK = re.compile(rb"[ \t\n\r\x0b\x0c]*")  # what bytes.isspace() takes


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
    """What a corpus read produced: documents read, skips by reason and a content hash.

    Every skip is counted by reason; the first ``MAX_SKIPS_KEPT`` are kept whole in
    ``skipped`` (a file of a million bad lines must not hold a million reports).
    """

    n_documents: int = 0
    skipped: list[Skip] = field(default_factory=list)
    n_skipped: int = 0
    _by_reason: Counter[str] = field(default_factory=Counter, repr=False)
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    def add(self, doc: Document) -> None:
        self.n_documents += 1
        for part in (doc.id, "\x1f".join(doc.tags)):
            self._hash.update(part.encode("utf-8"))
            self._hash.update(b"\x1e")
        # the text in slices: the same bytes as one encode, without a copy of a large text
        for i in range(0, len(doc.text), CHUNK_BYTES):
            self._hash.update(doc.text[i : i + CHUNK_BYTES].encode("utf-8"))
        self._hash.update(b"\x1e")

    def skip(self, item: Skip) -> None:
        self.n_skipped += 1
        self._by_reason[_reason_kind(item.reason)] += 1
        if len(self.skipped) < MAX_SKIPS_KEPT:
            self.skipped.append(item)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(self._by_reason)

    def summary(self) -> dict[str, object]:
        return {
            "documents_read": self.n_documents,
            "documents_skipped": self.n_skipped,
            "skipped_by_reason": self.skipped_by_reason,
            "sha256": self.sha256,
        }


def _reason_kind(reason: str) -> str:
    """Group skip reasons by their leading phrase (before any detail after ':')."""
    return reason.split(":", 1)[0]


def printable(text: str) -> str:
    """``text`` with lone surrogates (the undecodable bytes of a file name) as escapes, so it
    can be written as UTF-8: ``b"\\xff.txt"`` is named ``\\xff.txt``."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


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
    otherwise it is recorded in ``report`` and reading goes on.
    """
    report = report if report is not None else ReadReport()
    for raw in paths:
        root = Path(raw)
        if not root.exists() and not root.is_symlink():
            raise CorpusFormatError(printable(str(root)), "no such file or folder")
        for entry in _corpus_files(root):
            items = [entry] if isinstance(entry, Skip) else _read_file(*entry, require_tags)
            for item in items:
                if isinstance(item, Skip):
                    if strict:
                        raise CorpusFormatError(item.source, item.reason)
                    report.skip(item)
                else:
                    report.add(item)
                    yield item


def _corpus_files(root: Path) -> Iterator[tuple[Path, str] | Skip]:
    """Yield (path, document id) for a file, or for every corpus file under a folder; a
    folder that cannot be listed is a ``Skip``."""
    if not root.is_dir():
        yield root, printable(root.name)
        return
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        yield from (Skip(printable(str(e.filename)), _unreadable(e, "folder")) for e in errors)
        errors.clear()
        dirnames.sort()
        here = Path(dirpath)
        # A folder whose name looks like a corpus file is reported, not silently ignored.
        for name in dirnames:
            if name.endswith(TEXT_SUFFIXES + JSONL_SUFFIXES):
                yield here / name, printable((here / name).relative_to(root).as_posix())
        for name in sorted(filenames):
            if name.endswith(TEXT_SUFFIXES + JSONL_SUFFIXES):
                yield here / name, printable((here / name).relative_to(root).as_posix())
    yield from (Skip(printable(str(e.filename)), _unreadable(e, "folder")) for e in errors)


def _unreadable(exc: OSError, what: str = "") -> str:
    return f"unreadable{' ' + what if what else ''}: {exc.strerror or exc}"


# --- opening and reading files ------------------------------------------------------------


def _kind(mode: int) -> str | None:
    """What a file that is not a regular one is, as a skip reason; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"not a file: is {what}"


def open_regular(path: Path, limit: int) -> tuple[BinaryIO, int]:
    """Open a regular file of at most ``limit`` bytes without ever blocking; return it
    (unbuffered) and its size, or raise ``CorpusFormatError`` saying why not.

    Symlinks are followed. The type is checked before opening (a FIFO or a device is never
    opened) and again on the descriptor, opened with O_NONBLOCK, in case the file was
    swapped in between.
    """
    source = printable(str(path))
    try:
        _refuse(os.stat(path), limit, source)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise CorpusFormatError(source, _unreadable(exc)) from None
    try:
        info = os.fstat(fd)
        _refuse(info, limit, source)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise CorpusFormatError(source, _unreadable(exc)) from None
        raise
    return os.fdopen(fd, "rb", buffering=0), info.st_size


def _refuse(info: os.stat_result, limit: int, source: str) -> None:
    if (kind := _kind(info.st_mode)) is not None:
        raise CorpusFormatError(source, kind)
    if info.st_size > limit:
        raise CorpusFormatError(source, f"file too large: {info.st_size} bytes > {limit}")


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see ``open_regular``)."""
    f, size = open_regular(path, limit)
    with f:
        return _read_all(f.read, size, limit, printable(str(path)))


def _read_all(read: Callable[[int], bytes], expected: int, limit: int, source: str) -> bytes:
    """Read to the end: one read of the expected size, more only if the file grew (or
    reports no size, as /proc files do), never more than ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    want = min(expected, limit) + 1
    while chunk := read(want):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise CorpusFormatError(source, f"file too large: more than {limit} bytes")
        want = min(CHUNK_BYTES, limit + 1 - total)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _chunks(
    read: Callable[[int], bytes], limit: int, source: str, what: str = "file"
) -> Iterator[bytes]:
    """A stream in chunks of at most CHUNK_BYTES; more than ``limit`` bytes in all raises
    (a file that grows while read, an endless stdin)."""
    total = 0
    while chunk := read(CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            limit_of = " (the limit of a file)" if what != "file" else ""
            raise CorpusFormatError(source, f"{what} too large: more than {limit} bytes{limit_of}")
        yield chunk


def _read_file(path: Path, doc_id: str, require_tags: bool) -> Iterator[Document | Skip]:
    source = printable(str(path))
    try:
        f, size = open_regular(path, MAX_FILE_BYTES)
    except CorpusFormatError as exc:
        yield Skip(source, exc.reason)
        return
    if size == 0:  # (a seed file says so itself; a JSONL file would just have no line)
        f.close()
        yield Skip(source, "empty file: zero bytes")
        return
    with f:
        chunks = _chunks(f.read, MAX_FILE_BYTES, source)
        try:
            if not path.name.endswith(JSONL_SUFFIXES):
                item = _parse_seed(chunks, source, doc_id, require_tags)
            else:
                yield from _parse_jsonl(_utf8_chunks(chunks, source), source, require_tags)
                return
        except OSError as exc:  # an I/O error while reading: what was read stands
            item = Skip(source, _unreadable(exc))
        except CorpusFormatError as exc:  # a JSONL file that stops (too large, bad UTF-16)
            item = Skip(source, exc.reason)
    yield item  # the file closed first


# --- encodings -----------------------------------------------------------------------------

_DECODE = {
    "utf-8": codecs.utf_8_decode,
    "utf-16-le": codecs.utf_16_le_decode,
    "utf-16-be": codecs.utf_16_be_decode,
    "utf-32-le": codecs.utf_32_le_decode,
    "utf-32-be": codecs.utf_32_be_decode,
}


def _bom(head: bytes) -> tuple[str, int]:
    """The encoding a byte order mark at the start names, and its length (UTF-8 and 0
    without one)."""
    for mark, encoding in BOMS:
        if head.startswith(mark):
            return encoding, len(mark)
    return "utf-8", 0


def _nul_heavy(nuls: int, size: int) -> bool:
    # A few stray NUL bytes occur in real text files; many mean binary data or UTF-16/32.
    return nuls > size // 10


def _binary(what: str) -> str:
    return f"binary {what}: mostly NUL bytes (binary, or UTF-16/UTF-32 without a BOM)"


def _sniffed(chunks: Iterator[bytes]) -> tuple[str, int, Iterator[bytes]]:
    """The encoding a stream's BOM names, the BOM's length, and the stream after the BOM."""
    first = next(chunks, b"")
    while len(first) < 4 and (more := next(chunks, b"")):  # a pipe may give a few bytes
        first += more
    encoding, bom = _bom(first)
    return encoding, bom, chain([first[bom:]] if len(first) > bom else [], chunks)


def _decode_stream(
    chunks: Iterator[bytes], encoding: str, offset: int, source: str, what: str
) -> Iterator[str]:
    """Decode a byte stream piece by piece (``offset``: where it starts in the file); a bad
    byte raises naming its offset, and a NUL-heavy UTF-8 stream is binary (refused at once
    when its first chunk is, else at its end)."""
    decode = _DECODE[encoding]
    utf8 = encoding == "utf-8"
    pending, size, nuls = b"", offset, 0  # ``offset``: where ``pending`` starts
    for n, chunk in enumerate(chain(chunks, [None])):
        raw = b"" if chunk is None else chunk
        data = pending + raw if pending else raw
        size += len(raw)
        if utf8:
            nuls += raw.count(b"\x00")
            if n == 0 and _nul_heavy(nuls, size):
                raise CorpusFormatError(source, _binary(what))
        try:
            text, used = decode(data, "strict", chunk is None)
        except UnicodeDecodeError as exc:
            at = offset + exc.start
            if not utf8:
                raise CorpusFormatError(
                    source, f"not {encoding.upper()}: {exc.reason} at offset {at}"
                ) from None
            if nuls or any(b"\x00" in rest for rest in chunks):  # the rest read, not kept
                raise CorpusFormatError(source, f"binary {what}: not text") from None
            byte = data[exc.start]
            raise CorpusFormatError(
                source, f"not UTF-8: byte 0x{byte:02x} at offset {at}"
            ) from None
        pending, offset = data[used:], offset + used
        if text:
            yield text
    if utf8 and _nul_heavy(nuls, size):
        raise CorpusFormatError(source, _binary(what))


def _decoded(
    chunks: Iterator[bytes], source: str, what: str = "file", encoding: str | None = None
) -> Iterator[str]:
    """The text of a byte stream in pieces, line ends (CRLF, CR) made LF: in the encoding
    its BOM names (UTF-8 without one), unless ``encoding`` is given."""
    bom = 0
    if encoding is None:
        encoding, bom, chunks = _sniffed(chunks)
    cr = False  # a piece ended with CR: it may be the first half of a CRLF
    for text in _decode_stream(chunks, encoding, bom, source, what):
        if cr:
            text, cr = "\r" + text, False
        if text.endswith("\r"):
            text, cr = text[:-1], True
        yield text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    if cr:
        yield "\n"


def _utf8_chunks(chunks: Iterator[bytes], source: str, what: str = "file") -> Iterator[bytes]:
    """A stream as UTF-8 chunks without its BOM: UTF-16/32 with a BOM is transcoded; a
    stream that starts NUL-heavy without a BOM is refused as binary. UTF-8 is passed on
    undecoded (a JSONL line with a bad byte is reported alone)."""
    encoding, bom, chunks = _sniffed(chunks)
    if encoding != "utf-8":
        yield from (t.encode("utf-8") for t in _decode_stream(chunks, encoding, bom, source, what))
        return
    first = next(chunks, b"")
    if _nul_heavy(first.count(b"\x00"), len(first)):
        raise CorpusFormatError(source, _binary(what))
    yield first
    yield from chunks


# --- the seed format -------------------------------------------------------------------------


def _parse_seed(
    chunks: Iterator[bytes], source: str, doc_id: str, require_tags: bool
) -> Document | Skip:
    """Parse a seed-format stream as it is decoded: ``%%%A|B|`` header, blank line, text.

    Only the text's pieces and then the text are held (no copy of the file's bytes, and
    line ends are made LF piece by piece). A bad byte anywhere is reported in preference to
    a malformed header, as if the file were decoded first.
    """
    pieces = _decoded(chunks, source)
    try:
        first = next(pieces, "")
        if not first:
            return Skip(source, "empty file: zero bytes")
        while len(first) < len(HEADER) and (more := next(pieces, "")):
            first += more
        pieces = chain([first], pieces)
        if not first.startswith(HEADER):
            if require_tags:
                return _drained(pieces, Skip(source, "no header: line 1 must start with %%%"))
            return _document(doc_id, "".join(pieces), (), source, require_tags)
        header, pieces = _line(pieces, MAX_HEADER_CHARS)
        if header is None:
            reason = f"header too long: line 1 holds over {MAX_HEADER_CHARS} characters"
            return _drained(pieces, Skip(source, reason))
        blank, pieces = _blank_line(pieces)
        if not blank:
            return _drained(pieces, Skip(source, "no blank line: line 2 must be empty"))
        text = "".join(pieces)
    except CorpusFormatError as exc:
        return Skip(source, exc.reason)
    return _document(doc_id, text, parse_tags(header), source, require_tags)


def _line(pieces: Iterator[str], limit: int) -> tuple[str | None, Iterator[str]]:
    """The first line of a stream of text pieces (None when over ``limit`` characters) and
    the stream after it."""
    parts: list[str] = []
    size = 0
    for piece in pieces:
        lf = piece.find("\n")
        part = piece if lf < 0 else piece[:lf]
        size += len(part)
        if size > limit:
            return None, pieces
        parts.append(part)
        if lf >= 0:
            return "".join(parts), _after(piece, lf, pieces)
    return "".join(parts), pieces


def _blank_line(pieces: Iterator[str]) -> tuple[bool, Iterator[str]]:
    """Whether the first line of a stream of pieces is blank (nothing of it is kept, however
    long it is), and the stream after it."""
    for piece in pieces:
        lf = piece.find("\n")
        part = piece if lf < 0 else piece[:lf]
        if part and not part.isspace():
            return False, pieces
        if lf >= 0:
            return True, _after(piece, lf, pieces)
    return True, pieces


def _after(piece: str, lf: int, pieces: Iterator[str]) -> Iterator[str]:
    rest = piece[lf + 1 :]
    return chain([rest], pieces) if rest else pieces


def _drained(pieces: Iterator[str], skip: Skip) -> Skip:
    """``skip``, after decoding the rest (discarded): a bad byte is the better reason."""
    for _ in pieces:
        pass
    return skip


def parse_tags(header: str) -> tuple[str, ...]:
    """Split a ``%%%A|B|`` header (or its body) into stripped, unique, non-empty tags."""
    body = header[len(HEADER) :] if header.startswith(HEADER) else header
    tags = (t.strip() for t in body.split("|"))
    return tuple(dict.fromkeys(t for t in tags if t))


def _document(
    doc_id: str, text: str, tags: tuple[str, ...], source: str, require_tags: bool
) -> Document | Skip:
    if require_tags and not tags:
        return Skip(source, "empty tag list: the header names no tag")
    if not text or text.isspace():
        return Skip(source, "empty text: nothing after the header")
    return Document(doc_id, text, tags)


# --- JSONL -----------------------------------------------------------------------------------


def _lines(chunks: Iterable[bytes], limit: int) -> Iterator[tuple[int, int, bytes | None]]:
    """(number, byte offset, content without LF or CRLF) of the lines of a byte stream that
    are not blank; None as the content of a line over ``limit`` bytes, which is never held
    whole. A run of blank lines is skipped in one step (counted, not split), so a file of
    text between floods of empty lines costs per line of text, not per line."""
    lineno, offset, base = 1, 0, 0
    parts: list[bytes] = []
    size, too_long = 0, False
    for chunk in chunks:
        pos = 0
        while True:
            if not parts and not too_long:  # at the start of a line: skip blank lines
                end = _BLANK.match(chunk, pos).end()  # type: ignore[union-attr]
                if end > pos and (last := chunk.rfind(b"\n", pos, end)) >= 0:
                    lineno += chunk.count(b"\n", pos, end)
                    offset, pos = base + last + 1, last + 1
            lf = chunk.find(b"\n", pos)
            piece = chunk[pos:] if lf < 0 else chunk[pos:lf]
            if not too_long:
                if size + len(piece) > limit:
                    too_long, parts = True, []
                elif piece:
                    parts.append(piece)
                    size += len(piece)
            if lf < 0:
                break
            if too_long or parts:
                yield lineno, offset, None if too_long else _joined(parts)
            lineno, offset, pos = lineno + 1, base + lf + 1, lf + 1
            parts, size, too_long = [], 0, False
        base += len(chunk)
    if parts or too_long:
        yield lineno, offset, None if too_long else _joined(parts)


def _joined(parts: list[bytes]) -> bytes:
    line = parts[0] if len(parts) == 1 else b"".join(parts)
    return line[:-1] if line.endswith(b"\r") else line


def _parse_jsonl(
    chunks: Iterable[bytes], source: str, require_tags: bool
) -> Iterator[Document | Skip]:
    """Records of a UTF-8 JSONL stream, line by line; a bad line is a ``Skip`` naming its
    number."""
    for lineno, offset, raw in _lines(chunks, MAX_LINE_BYTES):
        where = f"{source}:{lineno}"
        if raw is None:
            yield Skip(where, f"line too long: over {MAX_LINE_BYTES} bytes")
            continue
        if not raw or raw.isspace():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {offset + exc.start}"
            yield Skip(where, reason)
            continue
        if not line.isspace():
            yield parse_json_record(line, where, require_tags)


def parse_json_record(line: str, source: str, require_tags: bool) -> Document | Skip:
    """Parse one ``{"id", "text", "tags"}`` line; ``id`` defaults to the source position."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Skip(source, f"invalid JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return Skip(source, "invalid JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return Skip(source, f"invalid JSON: {' '.join(str(exc).split())[:200]}")
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
    for name, value in (("text", text), ("id", doc_id), *(("tags", t) for t in raw_tags)):
        if isinstance(value, str) and (bad := _lone_surrogate(value)):
            return Skip(source, f"invalid field: {name!r} holds {bad}, which is not Unicode text")
    tags = tuple(dict.fromkeys(t.strip() for t in raw_tags if t.strip()))
    return _document(str(doc_id), text, tags, source, require_tags)


def _lone_surrogate(text: str) -> str | None:
    """A lone surrogate in ``text`` (JSON allows ``"\\ud800"``) described, or None."""
    if text.isascii() or (m := _SURROGATE.search(text)) is None:
        return None
    return f"a lone surrogate U+{ord(m.group()):04X} at character {m.start()}"


# --- inputs to tag ---------------------------------------------------------------------------


def read_inputs(sources: Iterable[str], stdin: TextIO | BinaryIO) -> Iterator[Document]:
    """Documents to tag, labelled or not: files, folders and JSONL as ``read_corpus`` reads
    them (the first bad one raises), and ``-`` for ``stdin``: JSONL records when its first
    non-blank character is ``{``, otherwise one plain text. stdin is read in chunks and
    holds at most MAX_FILE_BYTES, as a file does."""
    for source in sources:
        if source != "-":
            yield from read_corpus([source], require_tags=False, strict=True)
        else:
            yield from read_stdin(stdin)


def read_stdin(stdin: TextIO | BinaryIO) -> Iterator[Document]:
    """The documents of ``-`` (see ``read_inputs``); a bad one raises ``CorpusFormatError``."""
    raw = _chunks(_binary_reader(stdin), MAX_FILE_BYTES, STDIN, "input")
    stream = _utf8_chunks(raw, STDIN, "input")
    head: list[bytes] = []
    for chunk in stream:  # up to the first chunk that is not all whitespace
        head.append(chunk)
        if not chunk.isspace():
            break
    data = chain(head, stream)
    if b"".join(head).lstrip().startswith(b"{"):
        for item in _parse_jsonl(data, STDIN, require_tags=False):
            if isinstance(item, Skip):
                raise CorpusFormatError(item.source, item.reason)
            yield item
        return
    del head
    text = "".join(_decoded(data, STDIN, "input", encoding="utf-8"))
    if text and not text.isspace():
        yield Document(STDIN, text)


def _binary_reader(stdin: TextIO | BinaryIO) -> Callable[[int], bytes]:
    """A function reading up to n bytes of ``stdin`` (its binary buffer when it has one)."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return buffer.read  # type: ignore[no-any-return]
    sample = stdin.read(0)
    if isinstance(sample, bytes):
        return stdin.read  # type: ignore[return-value]
    return lambda n: stdin.read(n).encode("utf-8", "surrogateescape")  # type: ignore[union-attr]
