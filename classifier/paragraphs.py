"""Split a document's text into paragraphs of classifiable size, losing no character."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from classifier.corpus import Document

DEFAULT_MAX_CHARS = 3000
DEFAULT_MIN_CHARS = 30

# ` 12. ` inline paragraph numbers, as in UN documents on one line.
_NUMBERED = re.compile(r"(?:^|(?<=\s))(\d{1,3})\.(?=\s)")
# Section headings: `二. `, `四.加强`, `（三）`, `第二章`, `A. 打击` (Latin letter only before CJK).
_HEADING = re.compile(
    r"(?:^|(?<=\s))(?:[一二三四五六七八九十]{1,3}\s?[.、．]|[(（][一二三四五六七八九十]{1,3}[)）]"
    r"|第[一二三四五六七八九十百\d]{1,4}[章节部分]|[A-Z]\.\s?(?=[\u4e00-\u9fff]))"
)
# Sentence ends: CJK marks anywhere, Latin marks before a space.
_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)\"']*|\.(?=\s)")
_SPACE = re.compile(r"\s+")
_SPACE_CHAR = re.compile(r"\s")


@dataclass(frozen=True)
class Paragraph:
    """A paragraph with the id and all tags of the document it came from."""

    doc_id: str
    text: str
    tags: tuple[str, ...]


def visible_len(text: str) -> int:
    """Count the characters that are not whitespace."""
    return len(text) - len(_SPACE_CHAR.findall(text))


def split_paragraphs(
    text: str, max_chars: int = DEFAULT_MAX_CHARS, min_chars: int = DEFAULT_MIN_CHARS
) -> list[str]:
    """Split at line breaks, numbered paragraphs and headings; chunk long ones; merge scraps.

    Lengths count non-space characters (pre-segmented text has a space between words).
    Joining the result and removing whitespace gives the input without whitespace.
    """
    pieces: list[str] = []
    for line in text.split("\n"):
        for block in _split_markers(line):
            pieces.extend(_chunk(block, max_chars))
    return _merge_short([p for p in pieces if p], min_chars, max_chars)


def _split_markers(line: str) -> list[str]:
    """Cut a line before each sequential paragraph number and each heading."""
    cuts = set()
    expected = 1
    for m in _NUMBERED.finditer(line):
        number = int(m.group(1))
        if number in (1, expected):
            cuts.add(m.start())
            expected = number + 1
    cuts.update(m.start() for m in _HEADING.finditer(line))
    bounds = [0, *sorted(c for c in cuts if c > 0), len(line)]
    parts = (line[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False))
    return [p for p in parts if p]


def _chunk(block: str, max_chars: int) -> list[str]:
    """Pack sentences into chunks of at most ``max_chars`` visible characters."""
    if visible_len(block) <= max_chars:
        return [block]
    chunks: list[str] = []
    current = ""
    for sentence in _sentences(block, max_chars):
        if current and visible_len(current) + visible_len(sentence) > max_chars:
            chunks.append(current.strip())
            current = ""
        current += sentence
    if current.strip():
        chunks.append(current.strip())
    return chunks


def _sentences(block: str, max_chars: int) -> Iterator[str]:
    """Yield sentences; a sentence longer than ``max_chars`` is cut at spaces or hard."""
    start = 0
    for m in _SENTENCE_END.finditer(block):
        yield from _hard_split(block[start : m.end()], max_chars)
        start = m.end()
    if start < len(block):
        yield from _hard_split(block[start:], max_chars)


def _hard_split(sentence: str, max_chars: int) -> Iterator[str]:
    while visible_len(sentence) > max_chars:
        cut = _cut_index(sentence, max_chars)
        yield sentence[:cut]
        sentence = sentence[cut:]
    if sentence:
        yield sentence


def _cut_index(text: str, max_chars: int) -> int:
    """Index after ``max_chars`` visible characters, moved back to a space when one is near."""
    seen = 0
    for i, c in enumerate(text):
        if not c.isspace():
            seen += 1
            if seen == max_chars:
                end = i + 1
                space = text.rfind(" ", end - max_chars // 4, end)
                return space + 1 if space > 0 else end
    return len(text)


def _merge_short(pieces: list[str], min_chars: int, max_chars: int) -> list[str]:
    """Merge pieces under ``min_chars`` into the next piece (the last one into the previous)."""
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        piece = f"{carry} {piece}" if carry else piece
        carry = ""
        if visible_len(piece) < min_chars:
            carry = piece
        else:
            merged.append(piece)
    if carry:
        if merged and visible_len(merged[-1]) + visible_len(carry) <= max_chars + min_chars:
            merged[-1] = f"{merged[-1]} {carry}"
        else:
            merged.append(carry)
    return merged


def explode(
    doc: Document, max_chars: int = DEFAULT_MAX_CHARS, min_chars: int = DEFAULT_MIN_CHARS
) -> list[Paragraph]:
    """Turn a document into paragraphs that inherit its id and all its tags."""
    return [
        Paragraph(doc.id, text, doc.tags)
        for text in split_paragraphs(doc.text, max_chars, min_chars)
    ]


def squash(text: str) -> str:
    """Remove all whitespace (what the splitter promises to keep is everything else, in order)."""
    return _SPACE.sub("", text)
