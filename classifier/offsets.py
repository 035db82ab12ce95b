"""Where each character of a derived text came from in the text as sent.

The text path (``text.prepare_text``) rewrites a text step by step: paragraphs cut out,
whitespace dropped, NFKC, case folding, traditional to simplified, tokens joined. Run with
offsets, each step also carries a ``Spans``: for every character of its output, the
``[start, end)`` range of the original characters it stands for. A step writes its output
through ``Rewrite`` (or ``sub``), in both modes, so the text made with offsets is the text
made without them (the tests compare the two on many inputs).

A character keeps its own range where it can be told apart (kept, replaced one for one,
what is left of a run after some characters were dropped, one character's NFKC expansion);
otherwise every character of a replacement stands for the whole replaced run. Ranges never
go backwards, so ``span(i, j)`` of a slice is the first start and the last end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Spans:
    """``starts[i]``, ``ends[i]``: the original range of character ``i`` of a derived text
    (an empty range for a character that stands for none, such as a separator)."""

    starts: list[int]
    ends: list[int]

    @classmethod
    def identity(cls, n: int, offset: int = 0) -> Spans:
        return cls(list(range(offset, offset + n)), list(range(offset + 1, offset + n + 1)))

    def __len__(self) -> int:
        return len(self.starts)

    def span(self, i: int, j: int) -> tuple[int, int]:
        """The original range of the derived characters ``i`` to ``j - 1``."""
        return self.starts[i], self.ends[j - 1]


class Rewrite:
    """A text rewritten left to right: pieces replaced, the rest kept; with ``spans``, the
    output's spans too (without, only the text is made)."""

    def __init__(self, text: str, spans: Spans | None) -> None:
        self.text = text
        self.spans = spans
        self.parts: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.pos = 0

    def _keep(self, i: int, j: int) -> None:
        self.parts.append(self.text[i:j])
        if self.spans is not None:
            self.starts.extend(self.spans.starts[i:j])
            self.ends.extend(self.spans.ends[i:j])

    def replace(
        self, i: int, j: int, new: str, per_char: Callable[[str], str] | None = None
    ) -> None:
        """Write ``new`` for ``text[i:j]``; ``per_char``, when the step is one that maps each
        character alone (as NFKC does outside compositions), lets each output character
        keep its source's range."""
        if i > self.pos:
            self._keep(self.pos, i)
        self.pos = j
        if self.spans is None:
            self.parts.append(new)
            return
        old = self.text[i:j]
        # one for one when nothing changed, or (a replacement that is not NFKC's, which may
        # compose two characters and expand another) when the length is kept
        if new == old or (per_char is None and len(new) == len(old)):
            self._keep(i, j)
            self.parts[-1] = new
            return
        self.parts.append(new)
        s, e = self.spans.starts, self.spans.ends
        if per_char is not None:
            pieces = [per_char(c) for c in old]
            if "".join(pieces) == new:
                for k, piece in enumerate(pieces):
                    self.starts.extend([s[i + k]] * len(piece))
                    self.ends.extend([e[i + k]] * len(piece))
                return
        elif len(new) < len(old):  # characters dropped: the others keep their ranges
            picked = _subsequence(new, old)
            if picked is not None:
                self.starts.extend(s[i + k] for k in picked)
                self.ends.extend(e[i + k] for k in picked)
                return
        if j > i:
            start, end = s[i], e[j - 1]
        else:  # an insertion stands for no original character
            start = end = s[i] if i < len(s) else (e[-1] if e else 0)
        self.starts.extend([start] * len(new))
        self.ends.extend([end] * len(new))

    def done(self) -> tuple[str, Spans | None]:
        if self.pos < len(self.text) or not self.parts:
            self._keep(self.pos, len(self.text))
        text = "".join(self.parts)
        return text, None if self.spans is None else Spans(self.starts, self.ends)


def _subsequence(new: str, old: str) -> list[int] | None:
    """Where each character of ``new`` is in ``old`` (leftmost, in order), or None."""
    picked = []
    k = 0
    for c in new:
        k = old.find(c, k)
        if k < 0:
            return None
        picked.append(k)
        k += 1
    return picked


def sub(
    pattern: re.Pattern[str],
    repl: str | Callable[[re.Match[str]], str],
    text: str,
    spans: Spans | None,
) -> tuple[str, Spans | None]:
    """``pattern.sub(repl, text)``, and with ``spans`` the output's spans (the same matches,
    the same replacements, one at a time)."""
    if spans is None:
        return pattern.sub(repl, text), None
    rewrite = Rewrite(text, spans)
    for m in pattern.finditer(text):
        rewrite.replace(m.start(), m.end(), repl if isinstance(repl, str) else repl(m))
    return rewrite.done()


def per_char(text: str, new: str, spans: Spans | None, fn: Callable[[str], str]) -> Spans | None:
    """The spans of ``new = fn(text)`` for a function applied to each character alone
    (``str.casefold``)."""
    if spans is None or len(new) == len(text):
        return spans
    rewrite = Rewrite(text, spans)
    rewrite.replace(0, len(text), new, per_char=fn)
    return rewrite.done()[1]


_CHUNK = re.compile(r"\S+")


def converted(
    text: str, new: str, spans: Spans | None, convert: Callable[[str], str]
) -> Spans | None:
    """The spans of ``new = convert(text)`` for a converter that may map phrases (OpenCC):
    one for one when the lengths agree (all of OpenCC's t2s is so, measured); otherwise
    each run between whitespace converted alone, its characters kept one for one when its
    length is kept, else each standing for the whole run."""
    if spans is None or len(new) == len(text):
        return spans
    rewrite = Rewrite(text, spans)
    for m in _CHUNK.finditer(text):
        rewrite.replace(m.start(), m.end(), convert(m.group()))
    out, chunked = rewrite.done()
    if out == new and chunked is not None:
        return chunked
    whole = Rewrite(text, spans)  # runs convert otherwise alone: the whole text it is
    whole.replace(0, len(text), new)
    return whole.done()[1]
