"""Split a document's text into paragraphs of classifiable size, losing no character."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from classifier.corpus import Document
from classifier.offsets import Spans
from classifier.tokenizer import CJK

DEFAULT_MAX_CHARS = 3000
DEFAULT_MIN_CHARS = 300

# Where a cut may happen must not depend on whitespace next to CJK characters: raw text and
# the same text pre-segmented (a space between words) have to split alike. So candidates are
# found without whitespace look-behinds, and the character before a candidate is judged by
# the previous non-space character.
_WIDE = rf"{CJK}\u3000-\u303f\uff00-\uffef"
_CJK_CHAR = re.compile(rf"[{_WIDE}]")
# ` 12. ` inline paragraph numbers, as in UN documents on one line (also `12 .`, `12.毒品`):
# a number of one to three digits, a full stop, then (spaces or not) anything but a digit or
# another full stop: `1.2016年` and a segmenter's `1 . 2016 年` are a decimal-looking number
# alike, never a marker, since whitespace around the full stop decides nothing. (A leading
# lookahead on the first character, here and in _HEADING, lets the regex engine skip to the
# candidates; the possessive ``\s*+`` never backtracks into a run of spaces.)
_NUMBERED = re.compile(r"(?=\d)(?<![0-9A-Za-z])(\d{1,3})\s*+\.(?=\s*+[^\s\d.])")
# Letters and digits: the runs segmenters never cut inside (``2016``, ``x1``).
_ALNUM = re.compile(r"[0-9A-Za-z]")
# Section headings: `二. `, `四.加强`, `一、`, `（三）`, `第二章`. Latin letters (`A. 打击`)
# are not headings: in exam questions and lists they are options inside one paragraph.
_HEADING = re.compile(  # a segmenter may put spaces between any two of these characters
    r"(?=[一二三四五六七八九十(（第])"
    r"(?:(?:[一二三四五六七八九十]\s*+){1,3}[.、．]|[(（]\s*+(?:[一二三四五六七八九十]\s*+){1,3}[)）]"
    r"|第\s*+(?:[一二三四五六七八九十百\d]\s*+){1,4}[章节部分])"
)
# A heading starts a line or follows the end of a sentence.
_HEADING_AFTER = set("。！？；：:;!?．.」』）)")
# Sentence ends: CJK marks anywhere; a Latin full stop before (spaces or not) anything but a
# digit, a full stop or a CJK character, or at the end.
_SENTENCE_END = re.compile(rf"[。！？；!?;]+[”’」』）)\"']*|\.(?=\s*+[^\s\d.{_WIDE}]|\s*+$)")
_SPACE = re.compile(r"\s+")
_VISIBLE = re.compile(r"\S")


@dataclass(frozen=True)
class Paragraph:
    """A paragraph with the id and all tags of the document it came from."""

    doc_id: str
    text: str
    tags: tuple[str, ...]


def visible_len(text: str) -> int:
    """Count the characters that are not whitespace (``str.split`` and the regex ``\\s``
    agree on what whitespace is)."""
    return sum(map(len, text.split()))


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


def _previous_visible(line: str, index: int) -> str:
    """The last non-space character before ``index`` ('' at the start of the line)."""
    while index > 0 and line[index - 1].isspace():
        index -= 1
    return line[index - 1] if index > 0 else ""


def _decimal_part(line: str, index: int) -> bool:
    """Whether the number at ``index`` follows a digit and a full stop (``3.5``, ``3 . 5``)."""
    before = index
    while before > 0 and line[before - 1].isspace():
        before -= 1
    if before == 0 or line[before - 1] != ".":
        return False
    return _previous_visible(line, before - 1).isdigit()


def _split_markers(line: str) -> list[str]:
    """Cut a line before each sequential paragraph number and each recognisable heading."""
    cuts = set()
    expected = 1
    for m in _NUMBERED.finditer(line):
        number = int(m.group(1))
        if _decimal_part(line, m.start()):
            continue
        before = _previous_visible(line, m.start())
        # after a letter or digit only across a space (a word boundary in raw and segmented
        # text alike); after punctuation or CJK, spaces or not
        spaced = m.start() > 0 and line[m.start() - 1].isspace()
        ok_before = before == "" or spaced or not _ALNUM.match(before)
        if ok_before and number in (1, expected):
            cuts.add(m.start())
            expected = number + 1
    for m in _HEADING.finditer(line):
        before = _previous_visible(line, m.start())
        if before == "" or before in _HEADING_AFTER:
            cuts.add(m.start())
    bounds = [0, *sorted(c for c in cuts if c > 0), len(line)]
    parts = (line[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False))
    return [p for p in parts if p]


def _chunk(block: str, max_chars: int) -> list[str]:
    """Pack sentences into chunks of at most ``max_chars`` visible characters.

    Each sentence's length is counted once and the chunk's kept as a running total, so a
    block of many short sentences costs its length, not its length times ``max_chars``.
    """
    if visible_len(block) <= max_chars:
        return [block]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in _sentences(block, max_chars):
        n = visible_len(sentence)
        if current and size + n > max_chars:
            chunks.append("".join(current).strip())
            current, size = [], 0
        current.append(sentence)
        size += n
    last = "".join(current).strip()
    if last:
        chunks.append(last)
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
    """Cut a sentence into pieces of ``max_chars`` visible characters, each cut moved back to
    a word space when one lies within the last quarter of the piece (``_word_space``).

    One pass over the sentence: where each visible character is, is found once.
    """
    visible = [m.start() for m in _VISIBLE.finditer(sentence)]
    first, start = 0, 0  # the piece's first visible character, and where the piece starts
    while len(visible) - first > max_chars:
        end = visible[first + max_chars - 1] + 1
        floor = visible[first + max_chars - max(max_chars // 4, 1)]
        cut = _word_space_before(sentence, end, floor) or end
        yield sentence[start:cut]
        start = cut
        first = bisect_left(visible, cut, first)
    if start < len(sentence):
        yield sentence[start:]


def _word_space_before(text: str, end: int, floor: int) -> int | None:
    """The end of the last word space in ``text[floor:end]``: whitespace between two letters
    or digits that are not CJK (a space next to CJK or punctuation may be a segmenter's, which
    raw text lacks, so raw and pre-segmented text are cut at the same characters)."""
    j = end - 1
    while j > floor:
        if text[j].isspace() and not text[j + 1].isspace():
            after, run_end = text[j + 1], j + 1
            while j > floor and text[j].isspace():
                j -= 1
            if _word_char(text[j]) and _word_char(after) and not text[j].isspace():
                return run_end
        j -= 1
    return None


def _word_char(c: str) -> bool:
    return c.isalnum() and not _CJK_CHAR.match(c)


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


def locate(text: str, paragraphs: list[str]) -> list[Spans]:
    """Each character's range in ``text`` of paragraphs ``split_paragraphs`` cut from it.

    What the splitter promises (``squash`` of the joined paragraphs is ``squash(text)``) is
    what lets this be one pass: each visible character of a paragraph is the next visible
    character of ``text``; a space in a paragraph is the next space of ``text`` when one is
    there (else one the splitter put between merged pieces, standing for nothing). A
    paragraph found whole where the last one ended (past whitespace only) is taken at once.
    """
    located = []
    pos, n = 0, len(text)
    for paragraph in paragraphs:
        at = pos
        while at < n and text[at].isspace():
            at += 1
        if text.startswith(paragraph, at):  # cut out whole, as most paragraphs are
            located.append(Spans.identity(len(paragraph), at))
            pos = at + len(paragraph)
            continue
        starts, ends = [], []
        for c in paragraph:
            if c.isspace():
                if pos < n and text[pos].isspace():
                    pos += 1
                starts.append(pos)
                ends.append(pos)
                continue
            while pos < n and text[pos].isspace():
                pos += 1
            if pos >= n or text[pos] != c:  # not what the splitter makes: look further on
                found = text.find(c, pos)
                pos = found if found >= 0 else pos
            starts.append(pos)
            ends.append(min(pos + 1, n))
            pos = min(pos + 1, n)
        located.append(Spans(starts, ends))
    return located
